//! The one place a rhai engine is built: every formula runs inside these limits.
//!
//! Rule files come from pull requests by outsiders, so a formula is untrusted code. The
//! engine starts from `Engine::new_raw` (no standard library), gets only deterministic
//! arithmetic helpers, cannot load modules (the `no_module` feature), cannot read the clock
//! (`no_time`), has `eval` disabled, and every run is bounded in operations, call depth,
//! expression depth and value sizes. `print` and `debug` output is captured per thread so an
//! explain trace can show it and print spam cannot reach the terminal.

use std::cell::RefCell;

use rhai::{Dynamic, Engine, FLOAT, INT};

/// Limits applied to every formula evaluation. Changing one is a user-visible change: the
/// manual's security model (docs/security.md) lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_operations: u64,
    pub max_call_levels: usize,
    pub max_expr_depth: usize,
    pub max_function_expr_depth: usize,
    pub max_string_size: usize,
    pub max_array_size: usize,
    pub max_map_size: usize,
    pub max_variables: usize,
    pub max_functions: usize,
    /// Captured `print`/`debug` lines kept per evaluation; the rest are counted and dropped.
    pub max_captured_lines: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        max_operations: 100_000,
        max_call_levels: 16,
        max_expr_depth: 64,
        max_function_expr_depth: 32,
        max_string_size: 4_096,
        max_array_size: 1_024,
        max_map_size: 256,
        max_variables: 256,
        max_functions: 64,
        max_captured_lines: 16,
    };
}

thread_local! {
    static CAPTURED: RefCell<Captured> = const { RefCell::new(Captured { lines: Vec::new(), dropped: 0 }) };
}

struct Captured {
    lines: Vec<String>,
    dropped: usize,
}

fn capture(line: String) {
    CAPTURED.with(|c| {
        let mut c = c.borrow_mut();
        if c.lines.len() < Limits::DEFAULT.max_captured_lines {
            c.lines.push(line);
        } else {
            c.dropped += 1;
        }
    });
}

/// Clears this thread's captured output; call before an evaluation.
pub fn reset_captured() {
    CAPTURED.with(|c| {
        let mut c = c.borrow_mut();
        c.lines.clear();
        c.dropped = 0;
    });
}

/// Takes this thread's captured output (lines, and how many more were dropped).
pub fn take_captured() -> (Vec<String>, usize) {
    CAPTURED.with(|c| {
        let mut c = c.borrow_mut();
        let dropped = c.dropped;
        c.dropped = 0;
        (std::mem::take(&mut c.lines), dropped)
    })
}

/// Builds the hardened engine that compiles and runs every formula and derived value.
pub fn hardened_engine() -> Engine {
    let limits = Limits::DEFAULT;
    let mut engine = Engine::new_raw();
    engine
        .set_max_operations(limits.max_operations)
        .set_max_call_levels(limits.max_call_levels)
        .set_max_expr_depths(limits.max_expr_depth, limits.max_function_expr_depth)
        .set_max_string_size(limits.max_string_size)
        .set_max_array_size(limits.max_array_size)
        .set_max_map_size(limits.max_map_size)
        .set_max_variables(limits.max_variables)
        .set_max_functions(limits.max_functions)
        .set_strict_variables(true)
        .set_fail_on_invalid_map_property(true)
        .set_allow_looping(true);
    // `eval` would run text built at run time, outside every compile-time check.
    engine.disable_symbol("eval");
    // Float `**` calls the platform's `powf`, whose last bit differs between C libraries;
    // points must be identical on every machine.
    engine.disable_symbol("**");
    engine.disable_symbol("**=");
    // Object maps: no formula needs one, and rhai does not apply `max_map_size` to keys added
    // by indexing (`m[k] = v`), so a loop could grow one up to the operation limit.
    engine.disable_symbol("#{");
    // The raw engine has no `print`/`debug`; these capture instead of writing anywhere.
    engine.register_fn("print", |x: Dynamic| capture(x.to_string()));
    engine.register_fn("debug", |x: Dynamic| capture(format!("{x:?}")));
    register_math(&mut engine);
    engine
}

/// Every function a formula may call: those registered here, and rhai's own keyword
/// functions. `check` names any other call as unknown, with the closest of these.
pub const FUNCTIONS: &[&str] = &[
    "abs",
    "ceil",
    "clamp",
    "debug",
    "float",
    "floor",
    "int",
    "is_nan",
    "max",
    "min",
    "print",
    "round",
    "sqrt",
    "to_string",
    "type_of",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "is_shared",
];

// Only functions whose results are exact or correctly rounded by IEEE 754, so every
// platform computes the same bits.
fn register_math(engine: &mut Engine) {
    engine
        .register_fn("float", |x: INT| x as FLOAT)
        .register_fn("float", |x: FLOAT| x)
        .register_fn("floor", |x: FLOAT| x.floor())
        .register_fn("floor", |x: INT| x as FLOAT)
        .register_fn("ceil", |x: FLOAT| x.ceil())
        .register_fn("ceil", |x: INT| x as FLOAT)
        .register_fn("round", |x: FLOAT| x.round())
        .register_fn("round", |x: INT| x as FLOAT)
        .register_fn("sqrt", |x: FLOAT| x.sqrt())
        .register_fn("sqrt", |x: INT| (x as FLOAT).sqrt())
        .register_fn("abs", |x: FLOAT| x.abs())
        .register_fn("abs", |x: INT| x.wrapping_abs())
        .register_fn("min", |a: INT, b: INT| a.min(b))
        .register_fn("min", |a: FLOAT, b: FLOAT| a.min(b))
        .register_fn("min", |a: INT, b: FLOAT| (a as FLOAT).min(b))
        .register_fn("min", |a: FLOAT, b: INT| a.min(b as FLOAT))
        .register_fn("max", |a: INT, b: INT| a.max(b))
        .register_fn("max", |a: FLOAT, b: FLOAT| a.max(b))
        .register_fn("max", |a: INT, b: FLOAT| (a as FLOAT).max(b))
        .register_fn("max", |a: FLOAT, b: INT| a.max(b as FLOAT))
        .register_fn("clamp", |x: FLOAT, lo: FLOAT, hi: FLOAT| x.max(lo).min(hi))
        .register_fn("clamp", |x: INT, lo: INT, hi: INT| x.max(lo).min(hi))
        .register_fn("is_nan", |x: FLOAT| x.is_nan())
        .register_fn("to_string", |x: Dynamic| x.to_string());
    // `int` truncates toward zero and refuses values it cannot represent.
    engine.register_fn("int", |x: INT| x);
    engine.register_fn("int", |x: FLOAT| -> Result<INT, Box<rhai::EvalAltResult>> {
        if x.is_finite() && x.abs() < 9.0e18 {
            Ok(x.trunc() as INT)
        } else {
            Err(format!("cannot convert `{x}` to an integer").into())
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<Dynamic, String> {
        let engine = hardened_engine();
        engine.eval::<Dynamic>(src).map_err(|e| e.to_string())
    }

    #[test]
    fn mixed_arithmetic_works() {
        assert_eq!(run("1 + 2.5").unwrap().as_float().unwrap(), 3.5);
        assert_eq!(run("max(2, 3.5)").unwrap().as_float().unwrap(), 3.5);
    }

    #[test]
    fn infinite_loop_hits_operation_limit() {
        let err = run("loop {}").unwrap_err();
        assert!(err.contains("operations"), "{err}");
    }

    #[test]
    fn deep_recursion_is_bounded() {
        let err = run("fn f(x) { f(x + 1) } f(0)").unwrap_err();
        assert!(
            err.to_lowercase().contains("stack") || err.contains("levels") || err.contains("call"),
            "{err}"
        );
    }

    #[test]
    fn eval_and_power_are_disabled() {
        assert!(run(r#"eval("1")"#).is_err());
        assert!(run("2.0 ** 0.5").is_err());
    }

    #[test]
    fn huge_strings_are_refused() {
        let err = run(r#"let s = "x"; loop { s += s; }"#).unwrap_err();
        assert!(
            err.to_lowercase().contains("length") || err.contains("size"),
            "{err}"
        );
    }

    #[test]
    fn print_is_captured_not_printed() {
        reset_captured();
        let _ = run(r#"let i = 0; while i < 100 { print("spam"); i += 1; } 1"#).unwrap();
        let (lines, dropped) = take_captured();
        assert_eq!(lines.len(), Limits::DEFAULT.max_captured_lines);
        assert_eq!(lines.len() + dropped, 100);
    }

    #[test]
    fn integer_overflow_is_an_error() {
        assert!(run("9223372036854775807 + 1").is_err());
    }
}
