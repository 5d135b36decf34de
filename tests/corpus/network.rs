//! `corpus/network.jsonl`: jobs as the network recorded them, dated across its whole history.
//!
//! Generated from the shipped rules, so the corpus follows the catalog: every window of every
//! model (at its start, its middle and just before its end), every model after its removal,
//! every alias inside and outside its windows, the miner's execution limits on each side of
//! their dates and the timeouts of the rules' ceilings on both sides. Between them runs a bulk
//! of traffic from two weeks before Season 1 to a month after the catalog's last change.
//!
//! Deterministic: one xorshift generator ([`Rng`]) with a fixed seed, integer arithmetic for
//! every choice and latency, jobs in time order. Text comes from [`super::phrases`].

use jiff::Timestamp;
use jobpoints::internals::synth::Rng;
use jobpoints::internals::{Message as ChatMessage, Pricing, Role, RuleSet};
use serde::Serialize;

use super::phrases::*;

/// The seed: the day Season 1 began.
const SEED: u64 = 20240401;
/// Jobs of the bulk traffic, on top of those that cover the catalog.
const BULK_JOBS: u64 = 2000;
/// Miners (reward addresses).
const MINERS: usize = 50;
/// Season 1 began on 2024-04-01 ("A Tale of Two Points", SPEC.md); the bulk starts two
/// weeks earlier, so the corpus shows jobs before any rule priced them.
const SEASON_1: &str = "2024-04-01T00:00:00Z";
const BULK_LEAD_DAYS: i64 = 14;
/// The bulk ends this long after the catalog's last change.
const TAIL_DAYS: i64 = 30;
/// LLM miner v1.2.0 (miner-release 2eea7cf, 2024-10-19T22:14:49Z) changed the records: before
/// it a prompt was one templated string and the answer plain text; from it both are JSON
/// (shared/data/heurist_job_schema.md §2a).
pub const LLM_ERA_2: &str = "2024-10-19T22:14:49Z";
/// The miners' own timeouts, in seconds (miner-release config.toml, heurist_job_schema.md
/// §4): `sd_timeout_seconds` 22 then 18, `llm_timeout_seconds` 210 then 180. The rules'
/// ceilings are added to them, so latencies sit on both sides of every limit either uses.
pub const MINER_TIMEOUTS: &[(&str, u64)] =
    &[("image", 22), ("image", 18), ("llm", 210), ("llm", 180)];

/// What share of the bulk each family gets (an assumption: the network publishes no job
/// counts per model; image generation carried most of Season 1). A family not listed gets 3.
const FAMILY_WEIGHTS: &[(&str, u64)] = &[
    ("sdxl10", 30),
    ("sd15", 22),
    ("compositexl", 8),
    ("composite15", 8),
    ("flux-dev", 12),
    ("flux-dev-lora", 6),
    ("llm8x7b4b", 28),
    ("llm8b16b", 16),
    ("llm7b16b", 6),
    ("llm8x7b", 10),
    ("llm8b", 6),
    ("llm70b", 6),
];
/// The llama point's reference model (1 llama point = 1,000 tokens of Mixtral 8x7b, SPEC.md):
/// every shape of LLM job is placed in its first catalog window.
const REFERENCE_LLM: &str = "mistralai/mixtral-8x7b-instruct";
/// Share of image jobs in the bulk, in percent.
const IMAGE_SHARE: u64 = 64;

/// A job kind as the corpus builds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Image,
    Llm,
}

/// What a job must show, beyond a random draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Force {
    None,
    /// An image request of this size and steps (the miner's limits clamp it).
    Request(u32, u32, u32),
    /// An LLM job of this shape: streamed or not, its claim, its tools.
    Llm(bool, Claim, ToolUse),
}

/// A job to write: when, which model, and why it is there.
struct Plan {
    at: i64,
    model: String,
    kind: Kind,
    force: Force,
}

struct Miner {
    id: String,
    /// Share of the work, relative.
    weight: u64,
    /// Speed against the reference card, in percent of its time (100: as fast).
    slowness: u64,
}

/// The generator's state: the rules it reads, the generator, the miners.
struct Network<'r> {
    rules: &'r RuleSet,
    rng: Rng,
    image_miners: Vec<Miner>,
    llm_miners: Vec<Miner>,
    /// Timeouts in milliseconds, per kind, from the rules' ceilings and the miners' config.
    image_timeouts: Vec<u64>,
    llm_timeouts: Vec<u64>,
    era_2: i64,
    /// Sizes of the network's real example presets (corpus/example_jobs.jsonl), per family.
    presets: Vec<(String, u32, u32)>,
}

/// The corpus file's text.
pub fn network(rules: &RuleSet, examples: &str) -> String {
    let mut net = Network::new(rules, examples);
    let plans = net.plans();
    let mut out = String::new();
    for (n, plan) in plans.iter().enumerate() {
        let id = format!("net-{:05}", n + 1);
        let line = match plan.kind {
            Kind::Image => net.image_job(&id, plan),
            Kind::Llm => net.llm_job(&id, plan),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

fn seconds(t: Timestamp) -> i64 {
    t.as_second()
}

fn time(s: &str) -> i64 {
    jobpoints::internals::parse_time(s)
        .expect("a time")
        .as_second()
}

fn rfc3339(t: i64) -> String {
    Timestamp::from_second(t)
        .expect("in range")
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Milliseconds as a JSON number of seconds (`12.345`).
fn secs(ms: u64) -> f64 {
    ms as f64 / 1000.0
}

const DAY: i64 = 86_400;

/// The timeouts, in ms, that jobs of a job kind (`image`, `llm`) meet: every latency ceiling
/// of the rules' versions for it, and the miners' own ([`MINER_TIMEOUTS`]); in order.
pub fn timeouts(rules: &RuleSet, kind: &str) -> Vec<u64> {
    let ceilings = (rules.rules())
        .filter(|r| r.kind == kind)
        .flat_map(|r| &r.versions)
        .flat_map(|v| match &v.pricing {
            Pricing::Priced { ceilings, .. } => &ceilings[..],
            _ => &[],
        })
        .filter(|c| c.name.ends_with("_latency"))
        .map(|c| (c.max * 1000.0) as u64);
    let miners = (MINER_TIMEOUTS.iter())
        .filter(|(k, _)| *k == kind)
        .map(|(_, s)| s * 1000);
    let mut all: Vec<u64> = ceilings.chain(miners).collect();
    all.sort();
    all.dedup();
    all
}

impl<'r> Network<'r> {
    fn new(rules: &'r RuleSet, examples: &str) -> Self {
        let mut rng = Rng::new(SEED);
        // Each miner runs the SD miner, the LLM miner or both (a fifth of them each of the
        // last two); within each, the share of work falls with the rank (1/(rank + 2)), so a
        // few large miners do much of it.
        let mut image_miners = Vec::new();
        let mut llm_miners = Vec::new();
        for i in 0..MINERS {
            let id = format!(
                "0x{:016x}{:016x}{:08x}",
                rng.next_u64(),
                rng.next_u64(),
                rng.next_u64() >> 32
            );
            let slowness = 60 + rng.below(140);
            let miner = |rank: usize| Miner {
                id: id.clone(),
                weight: 1_000_000 / (rank as u64 + 2),
                slowness,
            };
            if i % 5 != 4 {
                image_miners.push(miner(image_miners.len()));
            }
            if i % 5 >= 3 {
                llm_miners.push(miner(llm_miners.len()));
            }
        }
        let image_timeouts = timeouts(rules, "image");
        let llm_timeouts = timeouts(rules, "llm");
        let mut presets = Vec::new();
        for line in examples.lines() {
            let v: serde_json::Value = serde_json::from_str(line).expect("an example job");
            let (Some(f), Some(w), Some(h)) = (
                v["model_type"].as_str(),
                v["width"].as_u64(),
                v["height"].as_u64(),
            ) else {
                continue;
            };
            let p = (f.to_string(), w as u32, h as u32);
            if !presets.contains(&p) {
                presets.push(p);
            }
        }
        Network {
            rules,
            rng,
            image_miners,
            llm_miners,
            image_timeouts,
            llm_timeouts,
            era_2: time(LLM_ERA_2),
            presets,
        }
    }

    /// The job kind of a family: its rule's, or for a family no rule prices (`[unpriced]`),
    /// LLM when its name says so (the catalog's LLM types all start with `llm`).
    fn kind_of(&self, family: &str) -> Kind {
        let kind = (self.rules.family_rules.get(family)).map(|r| r.kind.as_str());
        match kind {
            Some("llm") => Kind::Llm,
            Some(_) => Kind::Image,
            None if family.starts_with("llm") => Kind::Llm,
            None => Kind::Image,
        }
    }

    /// The family `model` has at `at` (or had last).
    fn family(&self, model: &str, at: i64) -> String {
        let at = Timestamp::from_second(at).ok();
        match self.rules.catalog_entry(model) {
            Some(e) => e.family_at(at).to_string(),
            None => {
                // An alias: its model's family.
                let alias = self.rules.aliases_of(model).first().expect("an alias");
                self.family(&alias.model, at.map_or(0, seconds))
            }
        }
    }

    /// Every job, in time order: the catalog covered, the limits crossed, then the bulk.
    fn plans(&mut self) -> Vec<Plan> {
        let rules = self.rules;
        let bounds = (rules.catalog.values())
            .flat_map(|e| &e.windows)
            .map(|w| &w.when)
            .chain(rules.aliases.values().flatten().map(|a| &a.when))
            .flat_map(|d| d.since.into_iter().chain(d.until));
        let first = bounds.clone().map(seconds).min().expect("a dated catalog");
        let horizon = bounds.map(seconds).max().expect("a dated catalog") + TAIL_DAYS * DAY;
        let mut plans = Vec::new();
        let mut plan = |this: &Self, at: i64, model: &str, force: Force| {
            let kind = this.kind_of(&this.family(model, at));
            plans.push(Plan {
                at,
                model: model.to_string(),
                kind,
                force,
            });
        };

        // Every window of every model: at its start, its middle, just before its end; after
        // each removal, at once and six weeks on.
        for (model, entry) in &rules.catalog {
            for (i, w) in entry.windows.iter().enumerate() {
                let since = w.when.since.map_or(first, seconds);
                let until = w.when.until.map(seconds);
                let end = until.unwrap_or(horizon);
                for at in [since, since + (end - since) / 2, end - 1] {
                    plan(self, at, model, Force::None);
                }
                let next = entry.windows.get(i + 1).and_then(|n| n.when.since);
                if let Some(until) = until
                    && next.map(seconds) != Some(until)
                {
                    plan(self, until, model, Force::None);
                    if until + 42 * DAY < horizon && next.is_none() {
                        plan(self, until + 42 * DAY, model, Force::None);
                    }
                }
            }
        }
        // Every alias inside its windows, and a day either side of them.
        for (name, windows) in &rules.aliases {
            for a in windows {
                let since = a.when.since.map_or(first, seconds);
                let until = a.when.until.map(seconds);
                let end = until.unwrap_or(horizon);
                for at in [since, since + (end - since) / 2, end - 1] {
                    plan(self, at, name, Force::None);
                }
                if a.when.since.is_some() {
                    plan(self, since - DAY, name, Force::None);
                }
                if let Some(until) = until {
                    plan(self, until + DAY, name, Force::None);
                }
            }
        }
        // The miner's execution limits: requests above every cap (2048², 60 steps), of a size
        // it rounds down (1023²), and at the caps, just before and after each entry's date, on
        // the image models the catalog lists then.
        let limits: Vec<i64> = (rules.job_kinds.values())
            .filter(|k| self.kind_of_job_kind(&k.name) == Kind::Image)
            .flat_map(|k| &k.execution_limits)
            .map(|l| seconds(l.effective_from))
            .collect();
        for date in limits {
            for at in [date - 3600, date, date + 3 * DAY] {
                let models = self.models_at(at, Kind::Image);
                for (i, request) in [(2048, 2048, 60), (1023, 1023, 50), (1024, 1024, 35)]
                    .into_iter()
                    .enumerate()
                {
                    let model = models[(i * 7 + at as usize / 60) % models.len()].clone();
                    let (w, h, s) = request;
                    plan(self, at, &model, Force::Request(w, h, s));
                }
            }
        }
        // Every shape of LLM job in both eras, three of each, spread over the first window of
        // the llama point's reference model (Mixtral 8x7b, SPEC.md), which spans both eras:
        // streamed (with and without a claimed count), claims that agree and that do not,
        // and from the second era tools offered, answered by a call, or called in the prompt.
        let reference = &rules.catalog[REFERENCE_LLM].windows[0].when;
        let (since, until) = (
            reference.since.map_or(first, seconds),
            reference.until.map_or(horizon, seconds),
        );
        let eras = [(since, self.era_2, false), (self.era_2, until, true)];
        for (from, to, tools) in eras {
            let mut shapes = vec![
                (true, Claim::None, ToolUse::None),
                (true, Claim::Agrees, ToolUse::None),
                (false, Claim::Agrees, ToolUse::None),
                (false, Claim::Disputed, ToolUse::None),
            ];
            if tools {
                for t in [ToolUse::Offered, ToolUse::Call, ToolUse::Result] {
                    shapes.push((false, Claim::None, t));
                }
            }
            let n = 3 * shapes.len() as i64;
            for (k, (stream, claim, tool_use)) in shapes.iter().flat_map(|s| [s; 3]).enumerate() {
                let at = from + (to - from) * (k as i64 + 1) / (n + 1);
                plan(
                    self,
                    at,
                    REFERENCE_LLM,
                    Force::Llm(*stream, *claim, *tool_use),
                );
            }
        }
        // The bulk: uniform in time; image or LLM; a family by weight among those listed
        // then, a model of it uniformly.
        let start = time(SEASON_1) - BULK_LEAD_DAYS * DAY;
        for _ in 0..BULK_JOBS {
            let at = start + self.rng.below((horizon - start) as u64) as i64;
            let mut kind = if self.rng.below(100) < IMAGE_SHARE {
                Kind::Image
            } else {
                Kind::Llm
            };
            if self.models_at(at, kind).is_empty() {
                kind = Kind::Image;
            }
            let model = self.weighted_model(at, kind);
            plan(self, at, &model, Force::None);
        }
        // Time order; ties keep the order above.
        plans.sort_by_key(|p| p.at);
        plans
    }

    fn kind_of_job_kind(&self, name: &str) -> Kind {
        if name == "llm" {
            Kind::Llm
        } else {
            Kind::Image
        }
    }

    /// The catalog's models of `kind` listed at `at`, in name order.
    fn models_at(&self, at: i64, kind: Kind) -> Vec<String> {
        let t = Timestamp::from_second(at).ok();
        (self.rules.catalog.iter())
            .filter_map(|(m, e)| e.window_at(t).map(|w| (m, &w.family)))
            .filter(|(_, f)| self.kind_of(f) == kind)
            .map(|(m, _)| m.clone())
            .collect()
    }

    fn weighted_model(&mut self, at: i64, kind: Kind) -> String {
        let t = Timestamp::from_second(at).ok();
        let models = self.models_at(at, kind);
        let mut families: Vec<(String, Vec<&String>)> = Vec::new();
        for m in &models {
            let f = self.rules.catalog[m].family_at(t).to_string();
            match families.iter_mut().find(|(g, _)| *g == f) {
                Some((_, ms)) => ms.push(m),
                None => families.push((f, vec![m])),
            }
        }
        let weight = |f: &str| {
            (FAMILY_WEIGHTS.iter())
                .find(|(g, _)| *g == f)
                .map_or(3, |(_, w)| *w)
        };
        let total: u64 = families.iter().map(|(f, _)| weight(f)).sum();
        let mut r = self.rng.below(total);
        for (f, ms) in &families {
            if r < weight(f) {
                return ms[self.rng.below(ms.len() as u64) as usize].clone();
            }
            r -= weight(f);
        }
        unreachable!("the weights cover every family")
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        self.rng.pick(items)
    }

    /// Percent in `0..100`.
    fn roll(&mut self) -> u64 {
        self.rng.below(100)
    }

    fn miner(&mut self, kind: Kind) -> usize {
        let miners = match kind {
            Kind::Image => &self.image_miners,
            Kind::Llm => &self.llm_miners,
        };
        let total: u64 = miners.iter().map(|m| m.weight).sum();
        let mut r = self.rng.below(total);
        for (i, m) in miners.iter().enumerate() {
            if r < m.weight {
                return i;
            }
            r -= m.weight;
        }
        unreachable!("the weights cover every miner")
    }

    /// A latency in ms: `typical`, or (one job in `near_in`) within 3 s of one of `timeouts`,
    /// on either side.
    fn latency(&mut self, typical: u64, timeouts: &[u64], near_in: u64) -> u64 {
        if self.rng.below(near_in) == 0 {
            let t = timeouts[self.rng.below(timeouts.len() as u64) as usize];
            t - 3000 + self.rng.below(6001)
        } else {
            typical
        }
    }

    // -----------------------------------------------------------------------------------------
    // Image jobs

    fn image_job(&mut self, id: &str, plan: &Plan) -> String {
        let family = self.family(&plan.model, plan.at);
        let flux = family.starts_with("flux");
        let (width, height, steps) = match plan.force {
            Force::Request(w, h, s) => (w, h, s),
            Force::None | Force::Llm(..) => {
                let (w, h) = self.size(&family);
                (w, h, self.steps(flux))
            }
        };
        let subject = *self.pick(IMAGE_SUBJECTS);
        let style = *self.pick(IMAGE_STYLES);
        let d1 = *self.pick(IMAGE_DETAILS);
        let d2 = *self.pick(IMAGE_DETAILS);
        let prompt = format!("{subject}, {style}, {d1}, {d2}");
        let neg_prompt = if flux {
            ""
        } else {
            *self.pick(NEGATIVE_PROMPTS)
        };
        let guidance_scale = if flux {
            *self.pick(&[3.0, 3.5, 4.0])
        } else {
            *self.pick(&[5.0, 6.0, 7.0, 7.0, 7.5, 8.0])
        };
        let seed = if self.roll() < 10 {
            -1
        } else {
            self.rng.below(1 << 31) as i64
        };
        let m = self.miner(Kind::Image);
        let miner = &self.image_miners[m];
        let (miner_id, slowness) = (miner.id.clone(), miner.slowness);
        // Time grows with the pixels and steps the miner ran (its caps: 2048², 50 steps at
        // most here), from 0.5 s for 512²×20 steps on the reference card; SDXL takes 2.2×,
        // Flux 6×, a LoRA 10% more; the miner's card is slower or faster.
        let pixels = u64::from(width.min(2048) / 8 * 8) * u64::from(height.min(2048) / 8 * 8);
        let model_pct: u64 = match family.as_str() {
            f if f.starts_with("flux") => 600,
            "sdxl10" => 220,
            "compositexl" => 242,
            "composite15" | "composite" => 110,
            _ => 100,
        };
        let work = pixels * u64::from(steps.min(50)) * model_pct * slowness;
        let noise = 90 + self.rng.below(21);
        let typical = 250 + 500 * work / (262_144 * 20 * 100 * 100) * noise / 100;
        let timeouts = self.image_timeouts.clone();
        let inference = self.latency(typical, &timeouts, 8);
        let typical_request = 40 + self.rng.below(700);
        let request = self.latency(typical_request, &timeouts, 150);
        let loading = (self.roll() < 6).then(|| secs(3000 + self.rng.below(25_000)));
        let upload = secs(80 + self.rng.below(1400));
        let record = ImageRecord {
            job_id: id,
            miner_id: &miner_id,
            model_id: &plan.model,
            completed_at: rfc3339(plan.at),
            model_input: ImageInput {
                sd: Sd {
                    prompt,
                    neg_prompt,
                    height,
                    width,
                    num_iterations: steps,
                    guidance_scale,
                    seed,
                },
            },
            result: S3Result {
                s3_key: format!("{id}-{miner_id}.png"),
            },
            request_latency: secs(request),
            loading_latency: loading,
            inference_latency: secs(inference),
            upload_latency: upload,
        };
        serde_json::to_string(&record).expect("serializes")
    }

    /// A requested size: the family's real presets most often, common sizes, sizes above
    /// the miner's caps, sizes it rounds down to a multiple of 8, and sizes below the
    /// 512² threshold.
    fn size(&mut self, family: &str) -> (u32, u32) {
        let presets: Vec<(u32, u32)> = (self.presets.iter())
            .filter(|(f, _, _)| f == family)
            .map(|(_, w, h)| (*w, *h))
            .collect();
        match self.roll() {
            0..50 if !presets.is_empty() => *self.pick(&presets),
            0..80 => *self.pick(&[
                (512, 512),
                (512, 768),
                (768, 512),
                (768, 768),
                (680, 1024),
                (1024, 680),
                (768, 1024),
                (1024, 1024),
                (832, 1216),
            ]),
            80..87 => *self.pick(&[(1536, 1536), (2048, 2048), (2048, 1024), (1536, 2048)]),
            87..92 => *self.pick(&[(1023, 1023), (700, 1050), (515, 770), (1000, 1500)]),
            _ => *self.pick(&[(256, 256), (384, 384), (448, 512), (512, 384)]),
        }
    }

    /// Requested steps: mostly 20 to 30, some below the 20-step threshold, some above the
    /// miner's caps (50, then 35).
    fn steps(&mut self, flux: bool) -> u32 {
        match self.roll() {
            0..5 => *self.pick(&[10, 15, 19, 19]),
            5..75 if flux => *self.pick(&[20, 24, 28]),
            5..75 => *self.pick(&[20, 21, 22, 25, 25, 28, 30]),
            75..93 => *self.pick(&[35, 36, 40, 45, 50]),
            _ => *self.pick(&[60, 75, 100]),
        }
    }

    // -----------------------------------------------------------------------------------------
    // LLM jobs

    fn llm_job(&mut self, id: &str, plan: &Plan) -> String {
        let era_1 = plan.at < self.era_2;
        let mut stream = self.roll() < 6;
        let mut claim = match self.roll() {
            0..5 => Claim::Agrees,
            5..10 => Claim::Disputed,
            _ => Claim::None,
        };
        // Tools exist from v1.2.0 on: some of the later jobs offer them; of those, a third are
        // answered by a call, a quarter carry a call and its result in the prompt.
        let tools = !era_1 && self.roll() < 20;
        let mut tool_use = match (tools, self.roll()) {
            (false, _) => ToolUse::None,
            (true, 0..33) => ToolUse::Call,
            (true, 33..58) => ToolUse::Result,
            (true, _) => ToolUse::Offered,
        };
        if let Force::Llm(s, c, t) = plan.force {
            (stream, claim, tool_use) = (s, c, t);
        }
        let tools = tool_use != ToolUse::None;
        let tool = self.rng.below(TOOLS.len() as u64) as usize;
        let offered = 1 + self.rng.below(TOOLS.len() as u64) as usize;
        let mut messages = self.conversation();
        if tool_use == ToolUse::Result {
            let call = tool_call(id, tool);
            messages.push(Message {
                role: "assistant",
                content: None,
                tool_calls: Some(vec![call]),
                tool_call_id: None,
            });
            messages.push(Message {
                role: "tool",
                content: Some(TOOL_CALLS[tool].1.to_string()),
                tool_calls: None,
                tool_call_id: Some(format!("chatcmpl-tool-{}", &id[4..])),
            });
        }
        let answer_tokens = self.tokens(&[
            (35, (5, 50)),
            (45, (50, 200)),
            (16, (200, 500)),
            (4, (500, 1200)),
        ]);
        let answer = self.prose(answer_tokens, true);
        let prompt = if era_1 {
            render_template(template_for(&plan.model), &messages)
        } else {
            py_json(&messages)
        };
        let text = if era_1 {
            answer.clone()
        } else if tool_use == ToolUse::Call {
            py_json(&[choice(None, Some(vec![tool_call(id, tool)]))])
        } else {
            py_json(&[choice(Some(answer.clone()), None)])
        };
        let m = self.miner(Kind::Llm);
        let miner = &self.llm_miners[m];
        let (miner_id, slowness) = (miner.id.clone(), miner.slowness);
        // About 40 tokens/s on the reference card, plus reading the prompt.
        let typical = 300 + (answer_tokens * 25 + prompt.len() as u64 / 8) * slowness / 100;
        let timeouts = self.llm_timeouts.clone();
        let inference = self.latency(typical, &timeouts, 10);
        let typical_request = 40 + self.rng.below(900);
        let request = self.latency(typical_request, &timeouts, 100);
        let temperature = *self.pick(&[0.0, 0.2, 0.7, 0.7, 0.8, 1.0]);
        let max_tokens = *self.pick(&[256, 512, 1024, 1024, 2048, 4096]);
        let mut record = LlmRecord {
            job_id: id,
            miner_id: &miner_id,
            model_id: &plan.model,
            completed_at: rfc3339(plan.at),
            model_input: LlmInput {
                llm: Llm {
                    prompt,
                    temperature,
                    max_tokens,
                    seed: -1,
                    use_stream: stream,
                    tools: tools.then(|| py_json(&tool_definitions(tool, offered))),
                },
            },
            result: Some(TextResult { text }),
            usage: None,
            request_latency: Some(secs(request)),
            inference_latency: Some(secs(inference)),
        };
        // A claim on a job without tools, whose text the tokenizer counts as it stands.
        if claim != Claim::None && tool_use == ToolUse::None {
            let (input, output) = self.counts(&messages, &answer);
            let (input, output) = match claim {
                // A miner's server counts with the served model's own tokenizer and template:
                // within a few percent of Mixtral's count.
                Claim::Agrees => (
                    input * (92 + self.rng.below(12)) / 100,
                    output * (95 + self.rng.below(8)) / 100,
                ),
                _ => (input * (3 + self.rng.below(10)) + 500, output * 4 + 900),
            };
            record.usage = Some(Usage {
                prompt_tokens: input,
                completion_tokens: output,
            });
        }
        if stream {
            // Streamed to /miner_submit_stream: the record keeps no answer and no latencies.
            record.result = None;
            record.request_latency = None;
            record.inference_latency = None;
        }
        serde_json::to_string(&record).expect("serializes")
    }

    /// The prompt's and the answer's token counts as the rules' LLM tokenizer counts a
    /// conversation of plain messages and a plain answer (the same in both eras), whatever
    /// prices the job, so claims do not move with rule versions.
    fn counts(&self, messages: &[Message], answer: &str) -> (u64, u64) {
        let tokens_of = (self.rules.job_kinds["llm"].inputs.iter())
            .find_map(|i| i.tokens_of.as_ref())
            .expect("LLM inputs are counted from text");
        let chat: Vec<ChatMessage> = (messages.iter())
            .map(|m| ChatMessage {
                role: match m.role {
                    "system" => Role::System,
                    "assistant" => Role::Assistant,
                    _ => Role::User,
                },
                content: m.content.clone().unwrap_or_default(),
            })
            .collect();
        let input = tokens_of
            .model
            .count_chat(&chat)
            .expect("a countable prompt");
        let output = tokens_of.model.count(answer).expect("a countable answer");
        (input, output)
    }

    /// A token count drawn from weighted (percent) buckets `[lo, hi)`.
    fn tokens(&mut self, buckets: &[(u64, (u64, u64))]) -> u64 {
        let mut r = self.roll();
        for (w, (lo, hi)) in buckets {
            if r < *w {
                return lo + self.rng.below(hi - lo);
            }
            r -= w;
        }
        unreachable!("buckets add up to 100")
    }

    /// Sentences of the bank up to about `tokens` tokens (4 characters each); an answer may
    /// be a list or carry a code block.
    fn prose(&mut self, tokens: u64, answer: bool) -> String {
        let target = (tokens * 4) as usize;
        let mut out = String::new();
        let form = if answer { self.roll() } else { 99 };
        let mut item = 1;
        while out.len() < target {
            let s = *self.pick(SENTENCES);
            match form {
                0..15 => {
                    out.push_str(&format!("{item}. {s}\n"));
                    item += 1;
                }
                15..25 if out.len() > target / 2 && !out.contains("```") => {
                    out.push_str("\n\n```\n");
                    let first = self.rng.below(CODE_LINES.len() as u64) as usize;
                    for line in CODE_LINES.iter().cycle().skip(first).take(4) {
                        out.push_str(line);
                        out.push('\n');
                    }
                    out.push_str("```\n\n");
                }
                _ => {
                    if !out.is_empty() {
                        out.push_str(if self.roll() < 15 { "\n\n" } else { " " });
                    }
                    out.push_str(s);
                }
            }
        }
        out.trim_end().to_string()
    }

    /// A conversation ending with a user turn: a question alone, with a system prompt,
    /// several turns, or a document to read; tens to a few thousand tokens.
    fn conversation(&mut self) -> Vec<Message> {
        let system = |s: &str| Message::text("system", s.to_string());
        let mut messages = Vec::new();
        match self.roll() {
            0..35 => {}
            _ => {
                let prompt = *self.pick(SYSTEM_PROMPTS);
                messages.push(system(prompt))
            }
        }
        match self.roll() {
            0..62 => {}
            62..88 => {
                for _ in 0..1 + self.rng.below(2) {
                    let q = self.pick(QUESTIONS).to_string();
                    messages.push(Message::text("user", q));
                    let n = self.tokens(&[(70, (10, 80)), (30, (80, 250))]);
                    let a = self.prose(n, true);
                    messages.push(Message::text("assistant", a));
                }
            }
            _ => {
                let n = self.tokens(&[(70, (100, 600)), (24, (600, 1500)), (6, (1500, 3000))]);
                let doc = self.prose(n, false);
                let q = self.pick(QUESTIONS);
                messages.push(Message::text(
                    "user",
                    format!("Here are my notes:\n\n{doc}\n\n{q}"),
                ));
                return messages;
            }
        }
        let q = self.pick(QUESTIONS).to_string();
        let extra = self.tokens(&[(75, (0, 1)), (25, (20, 120))]);
        let more = if extra > 0 {
            format!(" {}", self.prose(extra, false))
        } else {
            String::new()
        };
        messages.push(Message::text("user", format!("{q}{more}")));
        messages
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim {
    None,
    Agrees,
    Disputed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToolUse {
    None,
    /// Tools offered, answered in text.
    Offered,
    /// Answered by a tool call (content null).
    Call,
    /// The prompt carries a call and its result; answered in text.
    Result,
}

// ---------------------------------------------------------------------------------------------
// Records, field for field as the network wrote them (heurist_job_schema.md §2-3).

#[derive(Serialize)]
struct ImageRecord<'a> {
    job_id: &'a str,
    miner_id: &'a str,
    model_id: &'a str,
    completed_at: String,
    model_input: ImageInput,
    result: S3Result,
    request_latency: f64,
    loading_latency: Option<f64>,
    inference_latency: f64,
    upload_latency: f64,
}

#[derive(Serialize)]
struct ImageInput {
    #[serde(rename = "SD")]
    sd: Sd,
}

#[derive(Serialize)]
struct Sd {
    prompt: String,
    neg_prompt: &'static str,
    height: u32,
    width: u32,
    num_iterations: u32,
    guidance_scale: f64,
    seed: i64,
}

#[derive(Serialize)]
struct S3Result {
    #[serde(rename = "S3Key")]
    s3_key: String,
}

#[derive(Serialize)]
struct LlmRecord<'a> {
    job_id: &'a str,
    miner_id: &'a str,
    model_id: &'a str,
    completed_at: String,
    model_input: LlmInput,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<TextResult>,
    /// A count the record claims (an OpenAI-compatible `usage`): the network's miner sends
    /// none; a modified one could.
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_latency: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    inference_latency: Option<f64>,
}

#[derive(Serialize)]
struct LlmInput {
    #[serde(rename = "LLM")]
    llm: Llm,
}

#[derive(Serialize)]
struct Llm {
    prompt: String,
    temperature: f64,
    max_tokens: u32,
    seed: i64,
    use_stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    tools: Option<String>,
}

#[derive(Serialize)]
struct TextResult {
    #[serde(rename = "Text")]
    text: String,
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
}

/// A chat message as the gateway's JSON prompt carries it (era 2), in its key order.
#[derive(Serialize, Clone)]
pub struct Message {
    role: &'static str,
    content: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCall>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<String>,
}

impl Message {
    fn text(role: &'static str, content: String) -> Self {
        Message {
            role,
            content: Some(content),
            tool_calls: None,
            tool_call_id: None,
        }
    }
}

/// A tool call as openai 1.x's `model_dump()` writes it.
#[derive(Serialize, Clone)]
struct ToolCall {
    id: String,
    function: Function,
    #[serde(rename = "type")]
    ty: &'static str,
}

#[derive(Serialize, Clone)]
struct Function {
    arguments: &'static str,
    name: &'static str,
}

fn tool_call(job_id: &str, tool: usize) -> ToolCall {
    ToolCall {
        id: format!("chatcmpl-tool-{}", &job_id[4..]),
        function: Function {
            arguments: TOOL_CALLS[tool].0,
            name: TOOLS[tool].name,
        },
        ty: "function",
    }
}

/// A returned choice as the miner's `choice.model_dump()` wrote it (openai 1.x types).
#[derive(Serialize)]
struct Choice {
    finish_reason: &'static str,
    index: u32,
    logprobs: Option<()>,
    message: ChoiceMessage,
    stop_reason: Option<()>,
}

#[derive(Serialize)]
struct ChoiceMessage {
    content: Option<String>,
    refusal: Option<()>,
    role: &'static str,
    audio: Option<()>,
    function_call: Option<()>,
    tool_calls: Option<Vec<ToolCall>>,
}

fn choice(content: Option<String>, tool_calls: Option<Vec<ToolCall>>) -> Choice {
    Choice {
        finish_reason: if tool_calls.is_some() {
            "tool_calls"
        } else {
            "stop"
        },
        index: 0,
        logprobs: None,
        message: ChoiceMessage {
            content,
            refusal: None,
            role: "assistant",
            audio: None,
            function_call: None,
            tool_calls,
        },
        stop_reason: None,
    }
}

/// `count` tools of the bank from `first` on, as a client's `tools` list.
fn tool_definitions(first: usize, count: usize) -> Vec<serde_json::Value> {
    (TOOLS.iter().cycle().skip(first).take(count))
        .map(|tool| {
            let properties: serde_json::Map<String, serde_json::Value> = (tool.params.iter())
                .map(|p| {
                    let spec = serde_json::json!({"type": p.ty, "description": p.description});
                    (p.name.to_string(), spec)
                })
                .collect();
            serde_json::json!({"type": "function", "function": {
                "name": tool.name, "description": tool.description,
                "parameters": {"type": "object", "properties": properties,
                               "required": [tool.params[0].name]}}})
        })
        .collect()
}

/// `value` as Python's `json.dumps` writes it (the gateway and the miner are Python): `", "`
/// between items and `": "` after keys. The bank is ASCII, so its escapes agree too.
pub fn py_json<T: Serialize + ?Sized>(value: &T) -> String {
    struct Python;
    impl serde_json::ser::Formatter for Python {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first { Ok(()) } else { w.write_all(b", ") }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            w: &mut W,
        ) -> std::io::Result<()> {
            w.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, Python);
    value.serialize(&mut ser).expect("serializes");
    String::from_utf8(out).expect("JSON is UTF-8")
}

// ---------------------------------------------------------------------------------------------
// The first era's prompt templates, as the gateway wrote them.

/// The template the LLM miner before v1.2.0 used for a model: by a substring of its id,
/// `openhermes` or `dolphin` → ChatML, `llama` → Llama-2, `mistral` → Mistral; it refused any
/// other model (heurist_job_schema.md §2a).
pub fn template_for(model: &str) -> &'static str {
    if model.contains("openhermes") || model.contains("dolphin") {
        "chatml"
    } else if model.contains("llama") {
        "llama-2"
    } else if model.contains("mistral") {
        "mistral"
    } else {
        panic!("the first era's miner refused {model}: no template")
    }
}

/// `messages` written into one string by the gateway's template `name` (heurist-network/
/// litellm main-old, factory.py: `chatml_chat_pt`, `llama_2_chat_pt`, `mistral_instruct_pt`
/// through `custom_prompt`). A test checks this against the 1,080 prompts its own code wrote
/// (tests/fixtures/tokens/templated_corpus.jsonl).
pub fn render_template(name: &str, messages: &[Message]) -> String {
    let content = |m: &Message| m.content.clone().unwrap_or_default();
    // custom_prompt: pre + content + post per message, the EOS after an assistant message.
    let custom = |messages: &[Message], roles: &[(&str, &str, &str)], eos: &str| {
        let mut out = String::new();
        for m in messages {
            let (_, pre, post) = roles.iter().find(|(r, _, _)| *r == m.role).expect("a role");
            out.push_str(pre);
            out.push_str(&content(m));
            out.push_str(post);
            if m.role == "assistant" {
                out.push_str(eos);
            }
        }
        out
    };
    match name {
        "chatml" => (messages.iter())
            .map(|m| format!("<|im_start|>{}{}<|im_end|>\n", m.role, content(m)))
            .collect(),
        "llama-2" => custom(
            messages,
            &[
                ("system", "[INST] <<SYS>>\n", "\n<</SYS>>\n [/INST]\n"),
                ("user", "[INST] ", " [/INST]\n"),
                ("assistant", "", "\n"),
            ],
            "</s>",
        ),
        "mistral" => match messages {
            [only] => format!("[INST] {} [/INST]", content(only)),
            [earlier @ .., last] => format!(
                "<s>{}</s>[INST] {} [/INST]",
                custom(
                    earlier,
                    &[
                        ("system", "[INST] \n", " [/INST]\n"),
                        ("user", "[INST] ", " [/INST]\n"),
                        ("assistant", " ", "</s>"),
                    ],
                    "",
                ),
                content(last)
            ),
            [] => String::new(),
        },
        other => panic!("no template {other}"),
    }
}

/// A message of `role` with `content`, for tests that render templates.
pub fn message(role: &str, content: &str) -> Message {
    let role = match role {
        "system" => "system",
        "user" => "user",
        "assistant" => "assistant",
        other => panic!("role {other}"),
    };
    Message::text(role, content.to_string())
}
