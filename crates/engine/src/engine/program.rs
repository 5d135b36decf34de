//! A fast path for the simple arithmetic most formulas are.
//!
//! Calling into rhai costs about a microsecond per formula; scoring ledgers of millions of
//! jobs needs nanoseconds. Formulas and derived values that use only numbers, the job's
//! variables, `let`/`const`, parentheses and `+ - * / %` are compiled here into a small stack
//! program that mirrors rhai's semantics exactly: integer literals and variables are `i64`
//! with checked arithmetic, floats are `f64`, and a mixed operation converts the integer with
//! `as f64`, as rhai's built-in operators do. Anything outside that subset is not compiled and
//! runs in rhai. Any arithmetic error (overflow, division by zero) makes the program give up,
//! and the caller re-runs the job in rhai so the error message is rhai's own. The equivalence
//! is tested bit for bit against rhai (see `tests/` and the unit tests below).

use crate::engine::value::Value;

/// One instruction of a compiled program (also read by the prover, `engine::interval`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Op {
    Int(i64),
    Float(f64),
    Load(u16),
    Store(u16),
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Neg,
}

/// A compiled formula or derived value.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    ops: Vec<Op>,
    /// Slots beyond the job's variables, for `let` bindings.
    locals: usize,
    max_stack: usize,
}

/// The arithmetic failed; re-run in rhai for the canonical error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bail;

impl Program {
    /// Compiles `source` if it is in the supported subset. `names` are the variables in
    /// scope, in slot order. `None` means "run it in rhai".
    pub fn compile(source: &str, names: &[&str]) -> Option<Program> {
        let tokens = lex(source)?;
        let mut p = Parser {
            tokens,
            pos: 0,
            names: names.iter().map(|s| s.to_string()).collect(),
            ops: Vec::new(),
            depth: 0,
        };
        p.program()?;
        let locals = p.names.len() - names.len();
        let max_stack = stack_depth(&p.ops)?;
        Some(Program {
            ops: p.ops,
            locals,
            max_stack,
        })
    }

    /// The instructions, for the prover ([`crate::engine::interval`]).
    pub(crate) fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Slots the program's `let` bindings take after the job's variables.
    pub(crate) fn locals(&self) -> usize {
        self.locals
    }

    /// Evaluates with the job's variables in `slots` (in the order given to `compile`).
    /// `slots` is used as scratch for `let` bindings and restored to its length after.
    pub fn eval(&self, slots: &mut Vec<Value>, stack: &mut Vec<Value>) -> Result<Value, Bail> {
        let base = slots.len();
        slots.resize(base + self.locals, Value::Int(0));
        stack.clear();
        stack.reserve(self.max_stack);
        let result = self.run(slots, stack);
        slots.truncate(base);
        result
    }

    fn run(&self, slots: &mut [Value], stack: &mut Vec<Value>) -> Result<Value, Bail> {
        for op in &self.ops {
            match *op {
                Op::Int(i) => stack.push(Value::Int(i)),
                Op::Float(f) => stack.push(Value::Float(f)),
                Op::Load(s) => stack.push(slots[s as usize]),
                Op::Store(s) => slots[s as usize] = stack.pop().ok_or(Bail)?,
                Op::Neg => {
                    let v = stack.pop().ok_or(Bail)?;
                    stack.push(match v {
                        Value::Int(i) => Value::Int(i.checked_neg().ok_or(Bail)?),
                        Value::Float(f) => Value::Float(-f),
                    });
                }
                bin => {
                    let b = stack.pop().ok_or(Bail)?;
                    let a = stack.pop().ok_or(Bail)?;
                    stack.push(binary(bin, a, b)?);
                }
            }
        }
        stack.pop().ok_or(Bail)
    }
}

fn binary(op: Op, a: Value, b: Value) -> Result<Value, Bail> {
    Ok(match (a, b) {
        (Value::Int(x), Value::Int(y)) => Value::Int(
            match op {
                Op::Add => x.checked_add(y),
                Op::Sub => x.checked_sub(y),
                Op::Mul => x.checked_mul(y),
                Op::Div => x.checked_div(y),
                Op::Rem => x.checked_rem(y),
                _ => None,
            }
            .ok_or(Bail)?,
        ),
        (a, b) => {
            let (x, y) = (a.as_f64(), b.as_f64());
            Value::Float(match op {
                Op::Add => x + y,
                Op::Sub => x - y,
                Op::Mul => x * y,
                Op::Div => x / y,
                Op::Rem => x % y,
                _ => return Err(Bail),
            })
        }
    })
}

/// The deepest the value stack gets, or `None` if the program is malformed.
fn stack_depth(ops: &[Op]) -> Option<usize> {
    let (mut depth, mut max) = (0i64, 0i64);
    for op in ops {
        depth += match op {
            Op::Int(_) | Op::Float(_) | Op::Load(_) => 1,
            Op::Store(_) => -1,
            Op::Neg => 0,
            _ => -1,
        };
        if depth < 0 {
            return None;
        }
        max = max.max(depth);
    }
    (depth == 1).then_some(max as usize)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Int(i64),
    Float(f64),
    Ident(String),
    Let,
    Sym(char),
}

// Keywords and reserved words of rhai: any of them means "not in the subset".
const NOT_SUBSET: &[&str] = &[
    "if",
    "else",
    "switch",
    "do",
    "while",
    "until",
    "loop",
    "for",
    "in",
    "break",
    "continue",
    "return",
    "throw",
    "try",
    "catch",
    "fn",
    "private",
    "import",
    "export",
    "as",
    "true",
    "false",
    "this",
    "global",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "type_of",
    "print",
    "debug",
    "eval",
    "is_shared",
    "var",
    "static",
    "shared",
    "sync",
    "go",
    "match",
    "case",
    "public",
    "protected",
    "new",
    "use",
    "with",
    "module",
    "package",
    "super",
    "spawn",
    "thread",
    "await",
    "yield",
    "default",
    "void",
    "null",
    "nil",
];

fn lex(src: &str) -> Option<Vec<Tok>> {
    let b = src.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let rest = &src[i + 2..];
                let end = rest.find("*/")?;
                // Nested block comments are rhai's business.
                if rest[..end].contains("/*") {
                    return None;
                }
                i += 2 + end + 2;
            }
            b'0'..=b'9' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                    i += 1;
                }
                let mut float = false;
                if i < b.len() && b[i] == b'.' {
                    // Only `digits.digits`; `1.` and `1..` are rhai's business.
                    if !b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                        return None;
                    }
                    float = true;
                    i += 1;
                    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'_') {
                        i += 1;
                    }
                }
                if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                    float = true;
                    i += 1;
                    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
                        i += 1;
                    }
                    if !b.get(i).is_some_and(u8::is_ascii_digit) {
                        return None;
                    }
                    while i < b.len() && b[i].is_ascii_digit() {
                        i += 1;
                    }
                }
                if i < b.len() && (b[i].is_ascii_alphabetic() || b[i] == b'_') {
                    return None;
                }
                let text: String = src[start..i].chars().filter(|&c| c != '_').collect();
                // As rhai's tokenizer: an integer if it fits, else a float.
                let tok = match text.parse::<i64>() {
                    Ok(v) if !float => Tok::Int(v),
                    _ => Tok::Float(text.parse::<f64>().ok()?),
                };
                out.push(tok);
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                let word = &src[start..i];
                match word {
                    "let" | "const" => out.push(Tok::Let),
                    w if NOT_SUBSET.contains(&w) => return None,
                    w => out.push(Tok::Ident(w.to_string())),
                }
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'(' | b')' | b'=' | b';' => {
                // Compound operators (`**`, `+=`, `==`, `=>`, `->`, `/=`, ...) are rhai's business.
                if let Some(&n) = b.get(i + 1) {
                    let two = [c, n];
                    if matches!(
                        &two,
                        b"**"
                            | b"+="
                            | b"-="
                            | b"*="
                            | b"/="
                            | b"%="
                            | b"=="
                            | b"=>"
                            | b"->"
                            | b"++"
                            | b"--"
                    ) {
                        return None;
                    }
                }
                out.push(Tok::Sym(c as char));
                i += 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Deepest nesting compiled here; deeper goes to rhai (which enforces its own limit).
const MAX_DEPTH: usize = 32;

struct Parser {
    tokens: Vec<Tok>,
    pos: usize,
    names: Vec<String>,
    ops: Vec<Op>,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(&Tok::Sym(c)) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    /// `(let NAME = EXPR ;)* EXPR` and nothing after.
    fn program(&mut self) -> Option<()> {
        while self.peek() == Some(&Tok::Let) {
            self.pos += 1;
            let Some(Tok::Ident(name)) = self.tokens.get(self.pos).cloned() else {
                return None;
            };
            self.pos += 1;
            if !self.eat('=') {
                return None;
            }
            self.expr()?;
            if !self.eat(';') {
                return None;
            }
            // A new binding (shadowing gets a fresh slot, as in rhai).
            self.names.push(name);
            let slot = u16::try_from(self.names.len() - 1).ok()?;
            self.ops.push(Op::Store(slot));
        }
        self.expr()?;
        // A trailing `;` changes what rhai returns; leave such scripts to rhai.
        (self.pos == self.tokens.len()).then_some(())
    }

    fn expr(&mut self) -> Option<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return None;
        }
        self.term()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Sym('+')) => Op::Add,
                Some(Tok::Sym('-')) => Op::Sub,
                _ => break,
            };
            self.pos += 1;
            self.term()?;
            self.ops.push(op);
        }
        self.depth -= 1;
        Some(())
    }

    fn term(&mut self) -> Option<()> {
        self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Sym('*')) => Op::Mul,
                Some(Tok::Sym('/')) => Op::Div,
                Some(Tok::Sym('%')) => Op::Rem,
                _ => break,
            };
            self.pos += 1;
            self.unary()?;
            self.ops.push(op);
        }
        Some(())
    }

    fn unary(&mut self) -> Option<()> {
        if self.eat('-') {
            // rhai folds `-literal` into a negative literal; the value is the same.
            self.unary()?;
            self.ops.push(Op::Neg);
            return Some(());
        }
        if self.eat('+') {
            // rhai folds `+literal` into the literal, but applies `+` to anything else as a
            // function, which the raw engine does not have ("Function not found: + (i64)");
            // leave that to rhai so both paths fail alike (found by the `formula` fuzzer, #7).
            if !matches!(self.peek(), Some(Tok::Int(_) | Tok::Float(_))) {
                return None;
            }
            return self.unary();
        }
        self.atom()
    }

    fn atom(&mut self) -> Option<()> {
        match self.tokens.get(self.pos).cloned()? {
            Tok::Int(v) => {
                self.pos += 1;
                self.ops.push(Op::Int(v));
            }
            Tok::Float(v) => {
                self.pos += 1;
                self.ops.push(Op::Float(v));
            }
            Tok::Ident(name) => {
                self.pos += 1;
                // A call like `max(...)` is rhai's business.
                if self.peek() == Some(&Tok::Sym('(')) {
                    return None;
                }
                let slot = self.names.iter().rposition(|n| *n == name)?;
                self.ops.push(Op::Load(u16::try_from(slot).ok()?));
            }
            Tok::Sym('(') => {
                self.pos += 1;
                self.expr()?;
                if !self.eat(')') {
                    return None;
                }
            }
            _ => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::formula::sandbox::hardened_engine;
    use rhai::{Dynamic, Scope};

    fn via_rhai(src: &str, names: &[&str], values: &[Value]) -> Option<Value> {
        let engine = hardened_engine();
        let mut scope = Scope::new();
        for (n, v) in names.iter().zip(values) {
            scope.push_constant_dynamic(n.to_string(), v.to_dynamic());
        }
        let ast = engine.compile_with_scope(&scope, src).ok()?;
        let r = engine
            .eval_ast_with_scope::<Dynamic>(&mut scope, &ast)
            .ok()?;
        Value::from_dynamic(&r)
    }

    fn same(a: Option<Value>, b: Option<Value>) -> bool {
        match (a, b) {
            (Some(Value::Float(x)), Some(Value::Float(y))) => x.to_bits() == y.to_bits(),
            (a, b) => a == b,
        }
    }

    #[test]
    fn compiles_the_season_1_formulas() {
        let waifu = include_str!("../../rules/formulas/waifu_season1.rhai");
        let llama = include_str!("../../rules/formulas/llama_season1.rhai");
        assert!(Program::compile(waifu, &["width", "height", "steps", "pixels"]).is_some());
        assert!(Program::compile(llama, &["input_tokens", "output_tokens", "tokens"]).is_some());
    }

    #[test]
    fn leaves_everything_else_to_rhai() {
        for src in [
            "if x > 1 { 2 } else { 3 }",
            "max(x, 2)",
            "x ** 2",
            "x;",
            "let y = x; y;",
            "1.",
            "0x10",
            "\"text\"",
            "x == 1",
            "eval(\"1\")",
            "unknown + 1",
            "/* a /* nested */ comment */ x",
        ] {
            assert!(Program::compile(src, &["x"]).is_none(), "{src}");
        }
    }

    #[test]
    fn matches_rhai_bit_for_bit() {
        let names = ["a", "b", "c"];
        let sources = [
            "a + b * c",
            "(a - b) / c",
            "a / b",
            "a % b",
            "a / 3.0 + b",
            "-a * 2 - -b",
            "let m = 1.0 + 5.0 * (a - 262144) / 786432.0;\nm * b / 20.0",
            "const k = 7; let k = k * 2; k + a // trailing comment",
            "1_000.5 * a + 2e3 * 0.5 + 1.5e-3",
            "9223372036854775808 + a",
            "a * b * c",
            "a - b - c",
            "a / b / c",
        ];
        let values: Vec<Value> = [
            0i64,
            1,
            -1,
            2,
            3,
            7,
            20,
            19,
            262144,
            1048576,
            999_999_937,
            i64::MAX,
            i64::MIN,
        ]
        .into_iter()
        .map(Value::Int)
        .chain([0.0, -0.0, 0.1, 1.5, -2.25, 1e300, f64::MIN_POSITIVE].map(Value::Float))
        .collect();
        let mut slots = Vec::new();
        let mut stack = Vec::new();
        let mut compared = 0;
        for src in sources {
            let p = Program::compile(src, &names).unwrap_or_else(|| panic!("{src} compiles"));
            for &a in &values {
                for &b in values.iter().step_by(2) {
                    for &c in values.iter().step_by(3) {
                        slots.clear();
                        slots.extend([a, b, c]);
                        let fast = p.eval(&mut slots, &mut stack).ok();
                        let slow = via_rhai(src, &names, &[a, b, c]);
                        // Where the fast path gives up, the caller runs rhai: only compare
                        // when it produced a value.
                        if fast.is_some() {
                            assert!(
                                same(fast, slow),
                                "{src} with {a:?} {b:?} {c:?}: {fast:?} vs {slow:?}"
                            );
                            compared += 1;
                        } else {
                            assert!(
                                slow.is_none(),
                                "{src} with {a:?} {b:?} {c:?}: fast gave up but rhai gave {slow:?}"
                            );
                        }
                    }
                }
            }
        }
        assert!(compared > 1000);
    }
}
