//! The `DRVLGC` formula language of DWTOOL's file uploads: `+ - * / %`, unary `+ -`,
//! parentheses, numbers, quoted strings, `True`/`False`/`None`, column names in any
//! case, and eleven functions (`CONCAT`, `COALESCE`, `SPLIT`, `UPPER`, `LOWER`, `TRIM`,
//! `ABS`, `ROUND`, `LEN`, `SUBSTRING`, `REPLACE`). The original evaluates it through
//! Python's AST; this is a parser and an evaluator of the same language with Python's
//! results, and an error that names what is wrong instead of a silent default.
//!
//! A file's values arrive as text (so that leading zeros survive), where the original
//! had them typed by pandas. Arithmetic reads a column's text as the number it spells,
//! and `+` adds two columns that both spell numbers (the original added the numbers
//! pandas had parsed) and joins them otherwise. Quoted strings and what string
//! functions return are Python strings, never read as numbers.

use std::fmt;

use dwsched_model::python::python_float;

/// A value in a formula.
#[derive(Debug, Clone, PartialEq)]
pub enum FormulaValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A Python string: a quoted literal, or what a string function returns.
    Text(String),
    /// A column's value as the file has it, which arithmetic reads as a number.
    Column(String),
}

impl FormulaValue {
    /// The text Python's `str()` gives the value; `None` for NULL.
    pub fn to_text(&self) -> Option<String> {
        match self {
            Self::Null => None,
            other => Some(other.python_str()),
        }
    }

    /// Python's `str()`, with NULL as `None` (what `str(None)` gives).
    fn python_str(&self) -> String {
        match self {
            Self::Null => "None".into(),
            Self::Bool(true) => "True".into(),
            Self::Bool(false) => "False".into(),
            Self::Int(n) => n.to_string(),
            Self::Float(x) => python_float(*x),
            Self::Text(s) | Self::Column(s) => s.clone(),
        }
    }

    fn type_name(&self) -> &'static str {
        match self {
            Self::Null => "NULL",
            Self::Bool(_) => "a boolean",
            Self::Int(_) => "an integer",
            Self::Float(_) => "a number",
            Self::Text(_) => "text",
            Self::Column(_) => "a column's text",
        }
    }
}

/// Why a formula cannot be read or evaluated, naming the formula.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormulaError {
    #[error("formula '{formula}': {message} (at character {position})")]
    Syntax {
        formula: String,
        position: usize,
        message: String,
    },
    #[error("formula '{formula}': {message}")]
    Evaluation { formula: String, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Add,
    Subtract,
    Multiply,
    Divide,
    Modulo,
}

#[derive(Debug, Clone, PartialEq)]
enum Expression {
    Value(FormulaValue),
    /// A column, by its upper-case name.
    Name(String),
    Negate(Box<Expression>),
    Binary(Operator, Box<Expression>, Box<Expression>),
    /// A function, by its upper-case name, and the position of its name.
    Call(String, Vec<Expression>, usize),
}

/// A parsed formula, evaluated once per row.
#[derive(Debug, Clone, PartialEq)]
pub struct Formula {
    text: String,
    expression: Option<Expression>,
}

impl fmt::Display for Formula {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The functions, each with the counts of arguments it takes.
const FUNCTIONS: [(&str, usize, Option<usize>); 11] = [
    ("CONCAT", 0, None),
    ("COALESCE", 0, None),
    ("SPLIT", 2, Some(3)),
    ("UPPER", 1, Some(1)),
    ("LOWER", 1, Some(1)),
    ("TRIM", 1, Some(1)),
    ("ABS", 1, Some(1)),
    ("ROUND", 1, Some(2)),
    ("LEN", 1, Some(1)),
    ("SUBSTRING", 2, Some(3)),
    ("REPLACE", 3, Some(3)),
];

impl Formula {
    /// Reads a formula; an empty one evaluates to NULL, as the original's does.
    pub fn parse(text: &str) -> Result<Self, FormulaError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(Self {
                text: text.to_string(),
                expression: None,
            });
        }
        let tokens = tokenize(trimmed).map_err(|(position, message)| FormulaError::Syntax {
            formula: trimmed.to_string(),
            position,
            message,
        })?;
        let mut parser = Parser {
            tokens: &tokens,
            next: 0,
            end: trimmed.chars().count() + 1,
        };
        let expression = parser
            .expression()
            .and_then(|e| match parser.peek() {
                None => Ok(e),
                Some((token, position)) => {
                    Err((position, format!("unexpected {}", token.describe())))
                }
            })
            .map_err(|(position, message)| FormulaError::Syntax {
                formula: trimmed.to_string(),
                position,
                message,
            })?;
        Ok(Self {
            text: trimmed.to_string(),
            expression: Some(expression),
        })
    }

    /// The formula's value for a row; `column` gives a column's value by its upper-case
    /// name (`None`: NULL, or no such column).
    pub fn evaluate(
        &self,
        column: &dyn Fn(&str) -> Option<String>,
    ) -> Result<FormulaValue, FormulaError> {
        match &self.expression {
            None => Ok(FormulaValue::Null),
            Some(expression) => {
                eval(expression, column).map_err(|message| FormulaError::Evaluation {
                    formula: self.text.clone(),
                    message,
                })
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(String),
    Text(String),
    Name(String),
    Open,
    Close,
    Comma,
    Equals,
    Operator(Operator),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Number(n) => format!("number {n}"),
            Self::Text(t) => format!("string '{t}'"),
            Self::Name(n) => format!("name {n}"),
            Self::Open => "'('".into(),
            Self::Close => "')'".into(),
            Self::Comma => "','".into(),
            Self::Equals => "'='".into(),
            Self::Operator(op) => format!("'{}'", operator_symbol(*op)),
        }
    }
}

fn operator_symbol(op: Operator) -> char {
    match op {
        Operator::Add => '+',
        Operator::Subtract => '-',
        Operator::Multiply => '*',
        Operator::Divide => '/',
        Operator::Modulo => '%',
    }
}

/// The tokens of a formula with their positions (1-based characters).
fn tokenize(text: &str) -> Result<Vec<(Token, usize)>, (usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        let next = chars.get(i + 1).copied();
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => push(&mut tokens, &mut i, Token::Open, position),
            ')' => push(&mut tokens, &mut i, Token::Close, position),
            ',' => push(&mut tokens, &mut i, Token::Comma, position),
            '+' => push(
                &mut tokens,
                &mut i,
                Token::Operator(Operator::Add),
                position,
            ),
            '-' => push(
                &mut tokens,
                &mut i,
                Token::Operator(Operator::Subtract),
                position,
            ),
            '*' if next == Some('*') => {
                return Err((position, "'**' is not allowed in formulas".into()));
            }
            '*' => push(
                &mut tokens,
                &mut i,
                Token::Operator(Operator::Multiply),
                position,
            ),
            '/' if next == Some('/') => {
                return Err((position, "'//' is not allowed in formulas".into()));
            }
            '/' => push(
                &mut tokens,
                &mut i,
                Token::Operator(Operator::Divide),
                position,
            ),
            '%' => push(
                &mut tokens,
                &mut i,
                Token::Operator(Operator::Modulo),
                position,
            ),
            '=' if next == Some('=') => {
                return Err((position, "comparisons are not allowed in formulas".into()));
            }
            '=' => push(&mut tokens, &mut i, Token::Equals, position),
            '\'' | '"' => {
                let (value, after) = string_literal(&chars, i)?;
                tokens.push((Token::Text(value), position));
                i = after;
            }
            c if c.is_ascii_digit() || (c == '.' && next.is_some_and(|n| n.is_ascii_digit())) => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                if i < chars.len() && matches!(chars[i], 'e' | 'E') {
                    let mut j = i + 1;
                    if j < chars.len() && matches!(chars[j], '+' | '-') {
                        j += 1;
                    }
                    if j < chars.len() && chars[j].is_ascii_digit() {
                        i = j;
                        while i < chars.len() && chars[i].is_ascii_digit() {
                            i += 1;
                        }
                    }
                }
                let number: String = chars[start..i].iter().collect();
                if number.matches('.').count() > 1 {
                    return Err((position, format!("'{number}' is not a number")));
                }
                if i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    return Err((
                        i + 1,
                        format!("'{number}{}' is not a number or a name", chars[i]),
                    ));
                }
                tokens.push((Token::Number(number), position));
            }
            c if c.is_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push((Token::Name(chars[start..i].iter().collect()), position));
            }
            '<' | '>' | '!' => {
                return Err((position, "comparisons are not allowed in formulas".into()));
            }
            other => return Err((position, format!("'{other}' is not allowed in formulas"))),
        }
    }
    Ok(tokens)
}

fn push(tokens: &mut Vec<(Token, usize)>, i: &mut usize, token: Token, position: usize) {
    tokens.push((token, position));
    *i += 1;
}

/// A quoted string from `start` (its quote): its value and the index after it. The
/// escapes are Python's common ones.
fn string_literal(chars: &[char], start: usize) -> Result<(String, usize), (usize, String)> {
    let quote = chars[start];
    let mut value = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            c if c == quote => return Ok((value, i + 1)),
            '\\' if i + 1 < chars.len() => {
                let escaped = match chars[i + 1] {
                    'n' => Some('\n'),
                    't' => Some('\t'),
                    'r' => Some('\r'),
                    '0' => Some('\0'),
                    '\\' => Some('\\'),
                    '\'' => Some('\''),
                    '"' => Some('"'),
                    // An unknown escape stays as written, as in Python.
                    _ => None,
                };
                match escaped {
                    Some(c) => value.push(c),
                    None => {
                        value.push('\\');
                        value.push(chars[i + 1]);
                    }
                }
                i += 2;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    Err((start + 1, "a string is not closed".into()))
}

struct Parser<'t> {
    tokens: &'t [(Token, usize)],
    next: usize,
    /// The position just after the formula, for "expected … at the end".
    end: usize,
}

type Parsed<T> = Result<T, (usize, String)>;

impl Parser<'_> {
    fn peek(&self) -> Option<(&Token, usize)> {
        self.tokens.get(self.next).map(|(t, p)| (t, *p))
    }

    fn take(&mut self) -> Option<(Token, usize)> {
        let token = self.tokens.get(self.next).cloned();
        self.next += 1;
        token
    }

    /// `term (('+' | '-') term)*`
    fn expression(&mut self) -> Parsed<Expression> {
        let mut left = self.term()?;
        while let Some((Token::Operator(op @ (Operator::Add | Operator::Subtract)), _)) =
            self.peek()
        {
            let op = *op;
            self.next += 1;
            let right = self.term()?;
            left = Expression::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `unary (('*' | '/' | '%') unary)*`
    fn term(&mut self) -> Parsed<Expression> {
        let mut left = self.unary()?;
        while let Some((
            Token::Operator(op @ (Operator::Multiply | Operator::Divide | Operator::Modulo)),
            _,
        )) = self.peek()
        {
            let op = *op;
            self.next += 1;
            let right = self.unary()?;
            left = Expression::Binary(op, Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    /// `('+' | '-') unary | primary`
    fn unary(&mut self) -> Parsed<Expression> {
        match self.peek() {
            Some((Token::Operator(Operator::Subtract), _)) => {
                self.next += 1;
                Ok(Expression::Negate(Box::new(self.unary()?)))
            }
            Some((Token::Operator(Operator::Add), _)) => {
                self.next += 1;
                self.unary()
            }
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Parsed<Expression> {
        let Some((token, position)) = self.take() else {
            return Err((
                self.end,
                "the formula ends where a value is expected".into(),
            ));
        };
        match token {
            Token::Number(text) => number(&text)
                .map(Expression::Value)
                .ok_or((position, format!("'{text}' is not a number"))),
            Token::Text(text) => Ok(Expression::Value(FormulaValue::Text(text))),
            Token::Name(name) => match name.as_str() {
                "True" => Ok(Expression::Value(FormulaValue::Bool(true))),
                "False" => Ok(Expression::Value(FormulaValue::Bool(false))),
                "None" => Ok(Expression::Value(FormulaValue::Null)),
                _ if matches!(self.peek(), Some((Token::Open, _))) => {
                    self.next += 1;
                    let function = name.to_uppercase();
                    let arguments = self.arguments(&function)?;
                    Ok(Expression::Call(function, arguments, position))
                }
                _ => Ok(Expression::Name(name.to_uppercase())),
            },
            Token::Open => {
                let inner = self.expression()?;
                match self.take() {
                    Some((Token::Close, _)) => Ok(inner),
                    Some((other, at)) => {
                        Err((at, format!("expected ')', found {}", other.describe())))
                    }
                    None => Err((self.end, "a '(' is not closed".into())),
                }
            }
            other => Err((position, format!("unexpected {}", other.describe()))),
        }
    }

    /// The arguments of a call, after its `(`.
    fn arguments(&mut self, function: &str) -> Parsed<Vec<Expression>> {
        let mut arguments = Vec::new();
        if let Some((Token::Close, _)) = self.peek() {
            self.next += 1;
            return Ok(arguments);
        }
        loop {
            if let (Some((Token::Name(_), _)), Some((Token::Equals, at))) = (
                self.peek(),
                self.tokens.get(self.next + 1).map(|(t, p)| (t, *p)),
            ) {
                return Err((
                    at,
                    format!("{function} takes its arguments by position, not by name"),
                ));
            }
            arguments.push(self.expression()?);
            match self.take() {
                Some((Token::Comma, _)) => {}
                Some((Token::Close, _)) => return Ok(arguments),
                Some((other, at)) => {
                    return Err((
                        at,
                        format!("expected ',' or ')', found {}", other.describe()),
                    ));
                }
                None => return Err((self.end, format!("the call of {function} is not closed"))),
            }
        }
    }
}

/// A numeric literal: an integer, or a float.
fn number(text: &str) -> Option<FormulaValue> {
    if text.chars().all(|c| c.is_ascii_digit()) {
        // An integer too large for 64 bits is read as Python would print its float.
        return Some(
            text.parse()
                .map(FormulaValue::Int)
                .unwrap_or_else(|_| FormulaValue::Float(text.parse().unwrap_or(f64::INFINITY))),
        );
    }
    text.parse().ok().map(FormulaValue::Float)
}

/// A number arithmetic works on.
#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn float(self) -> f64 {
        match self {
            Self::Int(n) => n as f64,
            Self::Float(x) => x,
        }
    }
}

/// A column's text read as the number it spells, as pandas typed it for the original.
fn column_number(text: &str) -> Option<Number> {
    let trimmed = text.trim();
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && let Ok(n) = trimmed.parse::<i64>()
    {
        return Some(Number::Int(n));
    }
    let looks_numeric = digits
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_digit() || c == '.');
    looks_numeric
        .then(|| trimmed.parse::<f64>().ok().map(Number::Float))
        .flatten()
}

/// An operand of `- * / %` (and of `+` between numbers): NULL counts as 0, as the
/// original's `left or 0` has it.
fn operand(value: &FormulaValue, op: Operator) -> Result<Number, String> {
    match value {
        FormulaValue::Null => Ok(Number::Int(0)),
        FormulaValue::Bool(b) => Ok(Number::Int(i64::from(*b))),
        FormulaValue::Int(n) => Ok(Number::Int(*n)),
        FormulaValue::Float(x) => Ok(Number::Float(*x)),
        FormulaValue::Column(text) => column_number(text).ok_or_else(|| {
            format!(
                "'{text}' is not a number, so '{}' cannot use it",
                operator_symbol(op)
            )
        }),
        FormulaValue::Text(text) => Err(format!(
            "'{}' does not work on text ('{text}')",
            operator_symbol(op)
        )),
    }
}

fn is_zero(value: &FormulaValue) -> bool {
    match value {
        FormulaValue::Null => true,
        FormulaValue::Bool(b) => !b,
        FormulaValue::Int(n) => *n == 0,
        FormulaValue::Float(x) => *x == 0.0,
        FormulaValue::Column(text) => column_number(text).is_some_and(|n| n.float() == 0.0),
        FormulaValue::Text(_) => false,
    }
}

fn binary(op: Operator, left: FormulaValue, right: FormulaValue) -> Result<FormulaValue, String> {
    if op == Operator::Add {
        let joins = |v: &FormulaValue| match v {
            FormulaValue::Text(_) => true,
            FormulaValue::Column(text) => column_number(text).is_none(),
            _ => false,
        };
        if joins(&left) || joins(&right) {
            let text = |v: &FormulaValue| v.to_text().unwrap_or_default();
            return Ok(FormulaValue::Text(text(&left) + &text(&right)));
        }
    }
    // Dividing by zero (or NULL) gives NULL, as in the original.
    if matches!(op, Operator::Divide | Operator::Modulo) && is_zero(&right) {
        return Ok(FormulaValue::Null);
    }
    let (a, b) = (operand(&left, op)?, operand(&right, op)?);
    let overflow = || format!("the result of '{}' is too large", operator_symbol(op));
    Ok(match (op, a, b) {
        (Operator::Divide, a, b) => FormulaValue::Float(a.float() / b.float()),
        (Operator::Add, Number::Int(a), Number::Int(b)) => {
            FormulaValue::Int(a.checked_add(b).ok_or_else(overflow)?)
        }
        (Operator::Subtract, Number::Int(a), Number::Int(b)) => {
            FormulaValue::Int(a.checked_sub(b).ok_or_else(overflow)?)
        }
        (Operator::Multiply, Number::Int(a), Number::Int(b)) => {
            FormulaValue::Int(a.checked_mul(b).ok_or_else(overflow)?)
        }
        // Python's modulo takes the divisor's sign.
        (Operator::Modulo, Number::Int(a), Number::Int(b)) => {
            let r = a.checked_rem(b).ok_or_else(overflow)?;
            FormulaValue::Int(if r != 0 && (r < 0) != (b < 0) {
                r + b
            } else {
                r
            })
        }
        (op, a, b) => {
            let (a, b) = (a.float(), b.float());
            FormulaValue::Float(match op {
                Operator::Add => a + b,
                Operator::Subtract => a - b,
                Operator::Multiply => a * b,
                _ => {
                    let r = a % b;
                    if r != 0.0 && (r < 0.0) != (b < 0.0) {
                        r + b
                    } else {
                        r
                    }
                }
            })
        }
    })
}

/// Python's `float(value)`.
fn to_float(value: &FormulaValue, function: &str) -> Result<f64, String> {
    match value {
        FormulaValue::Null => Err(format!("{function} cannot read NULL as a number")),
        FormulaValue::Bool(b) => Ok(f64::from(u8::from(*b))),
        FormulaValue::Int(n) => Ok(*n as f64),
        FormulaValue::Float(x) => Ok(*x),
        FormulaValue::Text(text) | FormulaValue::Column(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{function}: '{text}' is not a number")),
    }
}

/// Python's `int(value)`.
fn to_int(value: &FormulaValue, function: &str) -> Result<i64, String> {
    match value {
        FormulaValue::Null => Err(format!("{function} cannot read NULL as a whole number")),
        FormulaValue::Bool(b) => Ok(i64::from(*b)),
        FormulaValue::Int(n) => Ok(*n),
        FormulaValue::Float(x) if x.is_finite() => Ok(x.trunc() as i64),
        FormulaValue::Float(x) => Err(format!("{function}: {x} is not a whole number")),
        FormulaValue::Text(text) | FormulaValue::Column(text) => text
            .trim()
            .parse()
            .map_err(|_| format!("{function}: '{text}' is not a whole number")),
    }
}

/// Python's `round(x, digits)`: to the nearest, ties to even, on the float's exact
/// value (so `round(2.675, 2)` is 2.67).
fn python_round(x: f64, digits: i64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if digits >= 0 {
        let digits = digits.min(330) as usize;
        // Formatting rounds the exact binary value, ties to even.
        format!("{x:.digits$}").parse().unwrap_or(x)
    } else {
        let scale = 10f64.powi(i32::try_from(-digits).unwrap_or(400).min(400));
        let scaled = x / scale;
        let rounded = scaled.round_ties_even();
        rounded * scale
    }
}

/// Python's slice `[start:end]` of a string's characters.
fn slice(text: &str, start: i64, end: Option<i64>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let len = chars.len() as i64;
    let clamp = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let (from, to) = (clamp(start), end.map_or(len, clamp));
    if from >= to {
        return String::new();
    }
    chars[from as usize..to as usize].iter().collect()
}

fn call(function: &str, arguments: Vec<FormulaValue>) -> Result<FormulaValue, String> {
    let Some(&(_, least, most)) = FUNCTIONS.iter().find(|(name, _, _)| *name == function) else {
        let known: Vec<&str> = FUNCTIONS.iter().map(|(name, _, _)| *name).collect();
        return Err(format!(
            "function {function} is not allowed in formulas; use one of {}",
            known.join(", ")
        ));
    };
    let given = arguments.len();
    if given < least || most.is_some_and(|most| given > most) {
        let takes = match most {
            None => format!("at least {least}"),
            Some(most) if most == least => least.to_string(),
            Some(most) => format!("{least} to {most}"),
        };
        return Err(format!(
            "{function} takes {takes} arguments ({given} given)"
        ));
    }
    let arg = |i: usize| arguments.get(i).cloned().unwrap_or(FormulaValue::Null);
    let value = arg(0);
    let text = value.python_str();
    Ok(match function {
        "CONCAT" => {
            FormulaValue::Text(arguments.iter().filter_map(FormulaValue::to_text).collect())
        }
        // The first value that is neither NULL nor empty text.
        "COALESCE" => arguments
            .iter()
            .find(|v| match v {
                FormulaValue::Null => false,
                FormulaValue::Text(t) | FormulaValue::Column(t) => !t.is_empty(),
                _ => true,
            })
            .cloned()
            .unwrap_or(FormulaValue::Null),
        "LEN" => match value {
            FormulaValue::Null => FormulaValue::Int(0),
            FormulaValue::Text(t) | FormulaValue::Column(t) => {
                FormulaValue::Int(t.chars().count() as i64)
            }
            other => return Err(format!("LEN needs text, not {}", other.type_name())),
        },
        // The others give NULL for NULL.
        _ if matches!(value, FormulaValue::Null) => FormulaValue::Null,
        "SPLIT" => {
            let delimiter = arg(1);
            let index = if given == 3 {
                to_int(&arg(2), "SPLIT")?
            } else {
                0
            };
            let parts: Vec<&str> = match &delimiter {
                FormulaValue::Null => text.split_whitespace().collect(),
                FormulaValue::Text(d) | FormulaValue::Column(d) if d.is_empty() => {
                    return Err("SPLIT needs a delimiter that is not empty".into());
                }
                FormulaValue::Text(d) | FormulaValue::Column(d) => text.split(d.as_str()).collect(),
                other => {
                    return Err(format!(
                        "SPLIT needs text as its delimiter, not {}",
                        other.type_name()
                    ));
                }
            };
            let position = if index < 0 {
                parts.len() as i64 + index
            } else {
                index
            };
            parts
                .get(usize::try_from(position).unwrap_or(usize::MAX))
                .map(|part| FormulaValue::Text((*part).to_string()))
                .ok_or_else(|| {
                    format!(
                        "SPLIT: '{text}' has {} parts, so there is no part {index}",
                        parts.len()
                    )
                })?
        }
        "UPPER" => FormulaValue::Text(text.to_uppercase()),
        "LOWER" => FormulaValue::Text(text.to_lowercase()),
        "TRIM" => FormulaValue::Text(text.trim().to_string()),
        "ABS" => FormulaValue::Float(to_float(&value, "ABS")?.abs()),
        "ROUND" => {
            let digits = if given == 2 {
                to_int(&arg(1), "ROUND")?
            } else {
                0
            };
            FormulaValue::Float(python_round(to_float(&value, "ROUND")?, digits))
        }
        "SUBSTRING" => {
            let start = to_int(&arg(1), "SUBSTRING")?;
            let end = if given == 3 {
                Some(start.saturating_add(to_int(&arg(2), "SUBSTRING")?))
            } else {
                None
            };
            FormulaValue::Text(slice(&text, start, end))
        }
        "REPLACE" => FormulaValue::Text(text.replace(&arg(1).python_str(), &arg(2).python_str())),
        _ => unreachable!("every function of FUNCTIONS is handled"),
    })
}

fn eval(
    expression: &Expression,
    column: &dyn Fn(&str) -> Option<String>,
) -> Result<FormulaValue, String> {
    Ok(match expression {
        Expression::Value(value) => value.clone(),
        Expression::Name(name) => column(name).map_or(FormulaValue::Null, FormulaValue::Column),
        Expression::Negate(inner) => match eval(inner, column)? {
            FormulaValue::Null => return Err("'-' cannot negate NULL".into()),
            value => match operand(&value, Operator::Subtract)? {
                Number::Int(n) => {
                    FormulaValue::Int(n.checked_neg().ok_or("the result of '-' is too large")?)
                }
                Number::Float(x) => FormulaValue::Float(-x),
            },
        },
        Expression::Binary(op, left, right) => {
            binary(*op, eval(left, column)?, eval(right, column)?)?
        }
        Expression::Call(function, arguments, _) => {
            let values = arguments
                .iter()
                .map(|a| eval(a, column))
                .collect::<Result<Vec<_>, _>>()?;
            call(function, values)?
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The formula's value for a row of `columns`, as text (`None`: NULL), or its error.
    fn run(formula: &str, columns: &[(&str, &str)]) -> Result<Option<String>, String> {
        let formula = Formula::parse(formula).map_err(|e| e.to_string())?;
        let lookup = |name: &str| {
            columns
                .iter()
                .find(|(c, _)| c.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.to_string())
        };
        formula
            .evaluate(&lookup)
            .map(|v| v.to_text())
            .map_err(|e| e.to_string())
    }

    fn ok(formula: &str, columns: &[(&str, &str)]) -> Option<String> {
        run(formula, columns).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(formula: &str, columns: &[(&str, &str)]) -> String {
        run(formula, columns).expect_err(formula)
    }

    const ROW: &[(&str, &str)] = &[
        ("QTY", "3"),
        ("PRICE", "2.5"),
        ("CODE", "007"),
        ("NAME", "  Ada Lovelace "),
        ("CITY", "London"),
        ("PATH", "a/b/c"),
        ("NEG", "-7"),
    ];

    /// Expected values are what the original's evaluator (CPython 3) gives for the same
    /// row with the numbers pandas would have read (`CODE` 007 as 7).
    #[test]
    fn arithmetic_as_python_does_it() {
        for (formula, expected) in [
            ("QTY * PRICE", Some("7.5")),
            ("qty + 1", Some("4")),
            ("QTY - 10", Some("-7")),
            ("QTY / 2", Some("1.5")),
            ("6 / 3", Some("2.0")),
            ("QTY % 2", Some("1")),
            ("NEG % 3", Some("2")),
            ("7 % -3", Some("-2")),
            ("-7.5 % 2", Some("0.5")),
            ("(QTY + 1) * 2", Some("8")),
            ("QTY + 1 * 2", Some("5")),
            ("-QTY + +2", Some("-1")),
            ("MISSING + 1", Some("1")),
            ("MISSING * 5", Some("0")),
            ("QTY / 0", None),
            ("QTY % MISSING", None),
            ("QTY / 0.0", None),
            ("1e3 + .5", Some("1000.5")),
            ("True + True", Some("2")),
            ("CODE + 1", Some("8")),
        ] {
            assert_eq!(ok(formula, ROW).as_deref(), expected, "{formula}");
        }
    }

    #[test]
    fn plus_joins_text() {
        for (formula, expected) in [
            ("CITY + '-' + CODE", "London-007"),
            ("'#' + QTY", "#3"),
            ("CITY + MISSING", "London"),
            ("'a' + 'b'", "ab"),
            ("\"it\\'s \" + CITY", "it's London"),
        ] {
            assert_eq!(ok(formula, ROW).as_deref(), Some(expected), "{formula}");
        }
    }

    #[test]
    fn each_function() {
        for (formula, expected) in [
            ("CONCAT(CITY, ' ', QTY, MISSING, 1.5)", Some("London 31.5")),
            ("concat()", Some("")),
            ("COALESCE(MISSING, '', CITY)", Some("London")),
            ("COALESCE(MISSING, 0)", Some("0")),
            ("COALESCE(MISSING)", None),
            ("SPLIT(PATH, '/')", Some("a")),
            ("SPLIT(PATH, '/', 2)", Some("c")),
            ("SPLIT(PATH, '/', -1)", Some("c")),
            ("SPLIT('a  b', None, 1)", Some("b")),
            ("SPLIT(MISSING, '/')", None),
            ("UPPER(CITY)", Some("LONDON")),
            ("upper('straße')", Some("STRASSE")),
            ("LOWER(CITY)", Some("london")),
            ("TRIM(NAME)", Some("Ada Lovelace")),
            ("UPPER(MISSING)", None),
            ("ABS(NEG)", Some("7.0")),
            ("ABS(-2.5)", Some("2.5")),
            ("ROUND(PRICE)", Some("2.0")),
            ("ROUND(3.5)", Some("4.0")),
            ("ROUND(2.675, 2)", Some("2.67")),
            ("ROUND(1234.5, -2)", Some("1200.0")),
            ("ROUND(QTY / 7, 3)", Some("0.429")),
            ("LEN(NAME)", Some("15")),
            ("LEN(MISSING)", Some("0")),
            ("SUBSTRING(CITY, 1, 3)", Some("ond")),
            ("SUBSTRING(CITY, 2)", Some("ndon")),
            ("SUBSTRING(CITY, -3)", Some("don")),
            ("SUBSTRING(CITY, 10, 2)", Some("")),
            ("SUBSTRING(MISSING, 0, 2)", None),
            ("REPLACE(PATH, '/', '.')", Some("a.b.c")),
            ("REPLACE(MISSING, 'a', 'b')", None),
        ] {
            assert_eq!(ok(formula, ROW).as_deref(), expected, "{formula}");
        }
        assert_eq!(
            ok("CONCAT(UPPER(TRIM(NAME)), ' (', LEN(CITY), ')')", ROW).as_deref(),
            Some("ADA LOVELACE (6)")
        );
    }

    #[test]
    fn each_error_names_the_formula_and_the_cause() {
        for (formula, message) in [
            (
                "QTY +",
                "formula 'QTY +': the formula ends where a value is expected (at character 6)",
            ),
            (
                "(QTY + 1",
                "formula '(QTY + 1': a '(' is not closed (at character 9)",
            ),
            (
                "QTY 2",
                "formula 'QTY 2': unexpected number 2 (at character 5)",
            ),
            (
                "QTY ** 2",
                "formula 'QTY ** 2': '**' is not allowed in formulas (at character 5)",
            ),
            (
                "QTY // 2",
                "formula 'QTY // 2': '//' is not allowed in formulas (at character 5)",
            ),
            (
                "QTY > 2",
                "formula 'QTY > 2': comparisons are not allowed in formulas (at character 5)",
            ),
            (
                "QTY.real",
                "formula 'QTY.real': '.' is not allowed in formulas (at character 4)",
            ),
            (
                "'open",
                "formula ''open': a string is not closed (at character 1)",
            ),
            (
                "ROUND(PRICE, digits=1)",
                "formula 'ROUND(PRICE, digits=1)': ROUND takes its arguments by position, not by name (at character 20)",
            ),
            (
                "EVAL('1')",
                "formula 'EVAL('1')': function EVAL is not allowed in formulas; use one of CONCAT, COALESCE, SPLIT, UPPER, LOWER, TRIM, ABS, ROUND, LEN, SUBSTRING, REPLACE",
            ),
            (
                "UPPER()",
                "formula 'UPPER()': UPPER takes 1 arguments (0 given)",
            ),
            (
                "REPLACE(CITY, 'a')",
                "formula 'REPLACE(CITY, 'a')': REPLACE takes 3 arguments (2 given)",
            ),
            (
                "ROUND(1, 2, 3)",
                "formula 'ROUND(1, 2, 3)': ROUND takes 1 to 2 arguments (3 given)",
            ),
            (
                "CITY * 2",
                "formula 'CITY * 2': 'London' is not a number, so '*' cannot use it",
            ),
            (
                "'a' - 1",
                "formula ''a' - 1': '-' does not work on text ('a')",
            ),
            ("-MISSING", "formula '-MISSING': '-' cannot negate NULL"),
            (
                "ABS(CITY)",
                "formula 'ABS(CITY)': ABS: 'London' is not a number",
            ),
            (
                "ROUND(PRICE, 'x')",
                "formula 'ROUND(PRICE, 'x')': ROUND: 'x' is not a whole number",
            ),
            (
                "SPLIT(PATH, '/', 5)",
                "formula 'SPLIT(PATH, '/', 5)': SPLIT: 'a/b/c' has 3 parts, so there is no part 5",
            ),
            (
                "SPLIT(PATH, '')",
                "formula 'SPLIT(PATH, '')': SPLIT needs a delimiter that is not empty",
            ),
            (
                "LEN(QTY * 2)",
                "formula 'LEN(QTY * 2)': LEN needs text, not an integer",
            ),
            (
                "9223372036854775807 + 1",
                "formula '9223372036854775807 + 1': the result of '+' is too large",
            ),
        ] {
            assert_eq!(err(formula, ROW), message, "{formula}");
        }
    }

    #[test]
    fn an_empty_formula_is_null() {
        assert_eq!(ok("", ROW), None);
        assert_eq!(ok("   ", ROW), None);
        assert_eq!(ok("None", ROW), None);
        assert_eq!(ok("True", ROW).as_deref(), Some("True"));
    }

    proptest::proptest! {
        /// Integer arithmetic agrees with Python's: `%` takes the divisor's sign, and
        /// `a == (a // b) * b + a % b`.
        #[test]
        fn modulo_as_python(a in -1000_i64..1000, b in -50_i64..50) {
            let got = ok(&format!("{a} % ({b})"), &[]);
            if b == 0 {
                proptest::prop_assert_eq!(got, None);
            } else {
                let r: i64 = got.unwrap().parse().unwrap();
                proptest::prop_assert!(r == 0 || (r < 0) == (b < 0));
                proptest::prop_assert_eq!((a - r) % b, 0);
                proptest::prop_assert!(r.abs() < b.abs());
            }
        }
    }
}
