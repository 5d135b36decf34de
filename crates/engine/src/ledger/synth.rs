//! A synthetic job ledger with a realistic mix, reproducible from a seed.
//!
//! Used by the benchmark (`cargo bench`) and by the tests that prove the fast path gives the
//! same bytes as plain evaluation. The mix follows the network's public data: image sizes and
//! steps as in its example presets (many non-square, some at 19 steps), the models of its
//! catalog, LLM token counts spread over several orders of magnitude, a few percent of jobs
//! below a threshold and about 1% malformed lines.

use std::io::{self, Write};

/// A small, fast, seedable generator (xorshift64*), so the ledger is identical everywhere.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() >> 32) * n) >> 32
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

const IMAGE_MODELS: &[&str] = &[
    "BrainDance",
    "BlazingDrive",
    "BluePencilRealistic",
    "YamersCartoonArcadia",
    "ArthemyComics",
    "ArthemyReal",
    "Aurora",
    "HelloWorldFilmGrain",
    "AnimagineXL",
    "CyberRealisticXL",
    "DreamShaperXL",
    "AAMXLAnimeMix",
    "SDXLUnstableDiffusersV11",
    "MagusDevon",
    "PepeXL",
    "FLUX.1-dev",
];
const LLM_MODELS: &[&str] = &[
    "mistralai/mixtral-8x7b-instruct",
    "mistralai/mixtral-8x7b-instruct-v0.1",
    "openhermes-mixtral-8x7b-gptq",
    "dolphin-2.9-llama3-8b",
    "hermes-3-llama3.1-8b",
    "openhermes-2-pro-mistral-7b",
    "meta-llama/llama-2-70b-chat",
];
/// Sizes from the network's example presets (shared/data/example_jobs.jsonl) plus squares.
const SIZES: &[(u32, u32)] = &[
    (512, 512),
    (512, 768),
    (768, 512),
    (680, 1024),
    (1024, 680),
    (768, 768),
    (1024, 1024),
    (1024, 768),
    (832, 1216),
    (1216, 832),
    (1024, 1536),
];
const STEPS: &[u32] = &[20, 20, 25, 25, 28, 30, 30, 35, 40, 50];

/// Writes `jobs` JSONL lines generated from `seed` to `out`.
pub fn write_ledger(out: &mut impl Write, jobs: u64, seed: u64) -> io::Result<()> {
    let mut rng = Rng::new(seed);
    let mut line = String::with_capacity(256);
    // Jobs from 2024-04-01 to the end of 2024, so every rule version appears.
    let start = 1_711_929_600i64; // 2024-04-01T00:00:00Z
    let span = 275 * 86_400u64;
    for n in 0..jobs {
        line.clear();
        let t = start + rng.below(span) as i64;
        let when = jiff::Timestamp::from_second(t)
            .expect("in range")
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let miner = format!(
            "0x{:040x}",
            (u128::from(rng.below(2000)) + 1)
                .wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835)
                >> 8
        );
        let roll = rng.below(1000);
        use std::fmt::Write as _;
        if roll < 10 {
            // ~1% malformed: broken JSON, a missing field, a string where a number belongs.
            match rng.below(3) {
                0 => write!(line, r#"{{"id":"j{n}","model":"BrainDance","width":512,"#),
                1 => write!(line, r#"{{"id":"j{n}","model":"AnimagineXL","height":512,"steps":20}}"#),
                _ => write!(line, r#"{{"id":"j{n}","model":"mistralai/mixtral-8x7b-instruct","input_tokens":"812","output_tokens":240}}"#),
            }
            .expect("write to string");
        } else if roll < 600 {
            let model = rng.pick(IMAGE_MODELS);
            let (mut w, mut h) = *rng.pick(SIZES);
            let mut steps = *rng.pick(STEPS);
            // A few percent below a threshold: 19 steps (as in the real presets) or too small.
            match rng.below(100) {
                0..=2 => steps = 19,
                3 => (w, h) = (256, 256),
                _ => {}
            }
            write!(
                line,
                r#"{{"id":"j{n}","model":"{model}","width":{w},"height":{h},"steps":{steps},"completed_at":"{when}","miner":"{miner}"}}"#
            )
            .expect("write to string");
        } else {
            let model = rng.pick(LLM_MODELS);
            // Roughly log-uniform, in integers only (no platform-dependent maths): from a
            // handful of tokens to 32k in, up to 4k out.
            let e_in = rng.below(15);
            let input = (1u64 << e_in) + rng.below(1 << e_in);
            let e_out = rng.below(12);
            let output = (1u64 << e_out) + rng.below(1 << e_out);
            write!(
                line,
                r#"{{"id":"j{n}","model":"{model}","input_tokens":{input},"output_tokens":{output},"completed_at":"{when}","miner":"{miner}"}}"#
            )
            .expect("write to string");
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}
