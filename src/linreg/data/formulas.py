"""data.formula: a model written as statsmodels users write it, `np.log(price) ~ carat * cut + I(carat ** 2)`.

formulaic parses the text (its operators: `+`, `:`, `*`, `/`, `( )**k`, `-`); each factor it finds is then
matched against the few forms this template reads, and kept as plain values: the checkpoint holds the
parsed terms, never text to evaluate, so predict.py, eval.py and export.py apply them without running code
from a file. The terms' features are computed by serving.formula_features, which exported models share.
"""

import re

from linreg.errors import ConfigError
from linreg.serving import TRANSFORMS

NAME = r"(?:`(?P<quoted>[^`]+)`|(?P<plain>[^\W\d][\w.]*))"
FORMS = {  # (the factor forms read; anything else is refused, never evaluated)
    "transform": re.compile(rf"(?:np\.|numpy\.)?(?P<function>{'|'.join(TRANSFORMS)})\(\s*{NAME}\s*\)"),
    "power": re.compile(rf"I\(\s*{NAME}\s*\*\*\s*(?P<power>\d+)\s*\)"),
    "category": re.compile(rf"C\(\s*{NAME}\s*\)"),
}
SUPPORTED = (
    "column names (`name with spaces` in backquotes), C(column) for categories, log/log10/log1p/sqrt(column) "
    "(np.log too) and I(column ** k), joined by +, :, * and ( )**k"
)


def read_formula(text: str) -> dict:
    """The formula as plain values: its targets, its terms (lists of factors) and the columns to read as
    categories; a ConfigError for a formula that is malformed, drops the intercept or uses another form."""
    from formulaic import Formula  # (only a job with a formula needs it)

    try:
        parsed = Formula(text)
    except Exception as error:  # formulaic's own syntax errors, one of several classes
        reason = re.sub(r"\x1b\[[\d;]*m|[⧚⧛]", "", str(error)).strip().splitlines()[0].rstrip(".")
        raise ConfigError(f"data.formula={text!r} cannot be read: {reason}. It takes {SUPPORTED}.") from None
    if not hasattr(parsed, "lhs"):
        raise ConfigError(
            f"data.formula={text!r} has no target: write it as target ~ features, e.g. 'np.log(price) ~ carat * cut'."
        )
    terms = [[(str(factor), factor.eval_method.value) for factor in term.factors] for term in parsed.rhs]
    if [("1", "literal")] not in terms:
        raise ConfigError(
            f"data.formula={text!r} leaves out the intercept (- 1, 0 +); the model always fits one: remove that part."
        )
    factors = [[read_factor(*factor, text) for factor in term] for term in terms if term != [("1", "literal")]]
    targets = []
    for term in parsed.lhs:
        if len(term.factors) != 1:
            raise ConfigError(f"data.formula={text!r}: the target side takes columns joined by +, not {term}.")
        (factor,) = term.factors
        name = str(factor)
        target = read_factor(name, factor.eval_method.value, text)
        if target["power"] or target.pop("category"):
            raise ConfigError(f"data.formula={text!r}: the target {name} is a number, or a transform of one (np.log).")
        targets.append(target)
    categorical = sorted({factor["column"] for term in factors for factor in term if factor.pop("category")})
    return {"text": text, "targets": targets, "terms": factors, "categorical": categorical}


def read_factor(name: str, method: str, text: str) -> dict:
    """One factor as plain values: its column, its transform or power, whether it is categorical. `method` is
    formulaic's: a `lookup` is a column's name (`a b` from backquotes), the others are matched against FORMS."""
    factor = {"name": name, "column": name, "transform": None, "power": None, "category": False}
    if method == "lookup":
        return factor
    for form, pattern in FORMS.items():
        match = pattern.fullmatch(name)
        if match:
            column = match["quoted"] or match["plain"]
            if form == "transform":
                return factor | {"column": column, "transform": match["function"]}
            if form == "power":
                if int(match["power"]) < 1:
                    raise ConfigError(f"data.formula={text!r}: {name} takes a power of 1 or more.")
                return factor | {"column": column, "power": int(match["power"])}
            return factor | {"name": column, "column": column, "category": True}
    raise ConfigError(f"data.formula={text!r}: the term {name} is not one this template reads; it takes {SUPPORTED}.")
