//! The phrase bank of `corpus/network.jsonl`: every text of its jobs is put together from
//! these lines, written for this corpus (no third-party text). ASCII only, so the records are
//! the same bytes whatever escapes a writer would choose.

/// System prompts a gateway client sends.
pub const SYSTEM_PROMPTS: &[&str] = &[
    "You are a helpful assistant.",
    "You are a terse assistant. Answer in as few words as the question allows.",
    "You are a patient tutor. Explain each step and check the reader's understanding.",
    "You are a senior software engineer reviewing code for correctness and clarity.",
    "You are a travel planner. Suggest realistic itineraries with times and costs.",
    "You are a careful analyst. State your assumptions before giving numbers.",
    "You answer questions about blockchains and GPU mining in plain language.",
    "You are a creative writing partner. Keep the user's tone and characters.",
    "You are a support agent for a compute marketplace. Be polite and precise.",
    "Reply in JSON only, with the keys `answer` and `confidence`.",
];

/// Questions and requests a user asks.
pub const QUESTIONS: &[&str] = &[
    "Hello, how are you?",
    "What is the difference between a process and a thread?",
    "Can you explain how a Merkle tree proves that a record belongs to a block?",
    "Write a short poem about a lighthouse keeper who counts ships.",
    "How long should I boil an egg for a soft yolk?",
    "Summarize the notes above in three bullet points.",
    "Which is faster for large matrix products, a GPU or a CPU, and why?",
    "Plan a two-day trip to a coastal town with a budget of 300 dollars.",
    "What does a learning rate warmup do during training?",
    "Translate 'the meeting moved to Thursday afternoon' into French and German.",
    "Give me three names for a bakery that only opens at night.",
    "Why does my Rust code say that a borrowed value does not live long enough?",
    "What are the trade-offs of storing images on a content-addressed network?",
    "Explain proof of stake to a ten-year-old.",
    "Draft a polite email asking a landlord to fix a leaking tap.",
    "How do I compute the median of a stream of numbers in constant memory?",
    "What happens to a GPU's clock speed when it gets too hot?",
    "Is it better to rent or to buy a small server for a side project?",
    "Rewrite this paragraph so that it is easier to read.",
    "List the steps to set up a Python virtual environment.",
    "What is a good warm-up routine before running five kilometres?",
    "Continue the story from where the last chapter stopped.",
    "How many tokens is a typical page of English text?",
    "What should I check before I sign a contract for a cloud GPU?",
    "Explain the rules of chess castling briefly.",
    "Why do some images from a diffusion model have six fingers?",
    "Compare SQLite and PostgreSQL for a small web application.",
    "What is the weather usually like in late October in the mountains?",
    "Find the bug: the loop never ends when the list is empty.",
    "Give a one-line definition of entropy in information theory.",
];

/// Sentences that answers, documents and earlier turns are made of.
pub const SENTENCES: &[&str] = &[
    "The short answer is yes, but the details depend on how you measure it.",
    "A thread shares the memory of its process, while a process has an address space of its own.",
    "Start with the simplest version that works, then measure before you optimise anything.",
    "The keeper climbed the stairs at dusk and lit the lamp before the first ship appeared.",
    "Most of the cost comes from moving data, not from the arithmetic itself.",
    "If the bridge is closed again tomorrow, we will take the ferry and arrive an hour late.",
    "Each leaf holds the hash of one record, and each parent holds the hash of its two children.",
    "To prove membership you only need the hashes along the path from the leaf to the root.",
    "A soft yolk usually takes six minutes in water that is already boiling.",
    "Cool the eggs in cold water for a minute so that the shells come off cleanly.",
    "Graphics processors run thousands of small cores in parallel, which suits matrix products.",
    "A central processor is faster per core, but it has far fewer cores to work with.",
    "The first morning could start with a walk along the harbour and breakfast near the market.",
    "Trains to the coast leave every hour, and a return ticket costs about forty dollars.",
    "Warmup raises the learning rate slowly, so early updates do not push the weights too far.",
    "Without it, the first few hundred steps can make the loss jump and never fully recover.",
    "The committee met on Tuesday, argued until Thursday, and agreed only on the next date.",
    "A good name is short, easy to say aloud, and hints at what the shop sells.",
    "The borrow checker sees that the reference outlives the value it points to.",
    "Move the value into the struct, or return an owned copy instead of a reference.",
    "Content addressing means that the same bytes always get the same name.",
    "Duplicates are stored once, but deleting a file everywhere becomes much harder.",
    "In proof of stake, people lock up coins as a promise to behave honestly.",
    "If they cheat, they lose part of what they locked, so cheating does not pay.",
    "Thank you for getting back to me so quickly about the flat.",
    "The tap in the kitchen has been dripping since Monday and the sink is now stained.",
    "A pair of heaps, one for the lower half and one for the upper half, keeps the median at hand.",
    "For constant memory you have to accept an approximation, such as a quantile sketch.",
    "When the temperature passes its limit, the card lowers its clock to protect itself.",
    "Better cooling or a lower power limit often gives back most of the lost speed.",
    "Renting is cheaper for the first year, and buying wins if the server runs every day.",
    "Remember to count electricity, bandwidth and the time you spend on maintenance.",
    "Shorter sentences and one idea per paragraph make a text much easier to follow.",
    "Create the environment with the venv module, activate it, then install your packages.",
    "Keep a requirements file in the repository so that others can rebuild the same setup.",
    "Five minutes of easy jogging and a few leg swings prepare the muscles for a faster pace.",
    "The rain had stopped, but the street still smelled of wet stone and bread from the bakery.",
    "She folded the map, looked at the harbour once more, and walked back towards the station.",
    "An English page of about five hundred words comes to roughly seven hundred tokens.",
    "Check the hourly price, the minimum term, the network egress fees and the support hours.",
    "Ask whether the card is shared with other tenants and how often the host reboots it.",
    "Castling moves the king two squares towards a rook, and the rook jumps over the king.",
    "Neither piece may have moved before, and the king may not pass through a square in check.",
    "Diffusion models learn statistics of pixels, and hands vary more than most shapes do.",
    "More sampling steps and a careful negative prompt reduce the problem but rarely remove it.",
    "SQLite is a single file with no server, which makes backups and tests very simple.",
    "PostgreSQL handles many writers at once and offers richer types and extensions.",
    "Late October in the mountains is cool and dry, with the first snow on the high passes.",
    "The loop waits for an element that never arrives, so it spins forever on an empty list.",
    "Check the length first, or iterate over the list itself instead of over an index.",
    "Entropy is the average number of bits needed to describe the outcome of a random source.",
    "Each job is scored from what it requested, what the miner ran, and when it finished.",
    "The sequencer assigns work to miners that have the right model loaded in memory.",
    "A miner that answers too slowly forfeits the points for that job.",
    "Prices were calibrated on a reference card and then scaled by measured run times.",
    "The ledger records every job once, with its model, its parameters and its result.",
    "If the numbers disagree, the text of the job is what counts, not the claim next to it.",
    "Let me know if you would like a longer version or more examples.",
    "In summary, both options work, and the better one depends on your budget and your time.",
    "The first step is to reproduce the problem with the smallest input you can find.",
    "After that, write a test that fails, fix the code, and keep the test.",
    "Her grandfather kept a notebook of every storm since the year the harbour froze.",
    "By noon the fog had lifted and the boats were already heading back with their catch.",
    "A cache helps only when the same question is asked again before the entry expires.",
    "Batching many small requests together keeps the GPU busy and lowers the cost per job.",
    "Quantised weights use less memory, at the price of a small loss in accuracy.",
    "A four-bit model of eight billion parameters fits comfortably on a sixteen gigabyte card.",
    "The answer arrives word by word when streaming is on, so the reader sees progress at once.",
    "Tool calls let the model ask for fresh data instead of guessing it.",
    "The price feed returned an error, so the assistant asked the user to try again later.",
    "Write the date in ISO format, so that sorting the strings also sorts the days.",
];

/// Lines of code an answer may quote in a fenced block.
pub const CODE_LINES: &[&str] = &[
    "fn median(sorted: &[u64]) -> Option<u64> {",
    "    sorted.get(sorted.len() / 2).copied()",
    "}",
    "def retry(call, attempts=3):",
    "    for i in range(attempts):",
    "        try:",
    "            return call()",
    "        except TimeoutError:",
    "            time.sleep(2 ** i)",
    "SELECT miner_id, count(*) FROM jobs GROUP BY miner_id ORDER BY 2 DESC;",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt",
    "const total = jobs.reduce((sum, job) => sum + job.points, 0);",
];

/// Image prompts: a subject, a style and details.
pub const IMAGE_SUBJECTS: &[&str] = &[
    "a lighthouse on a cliff at dusk",
    "a girl with silver hair reading under a cherry tree",
    "a cyberpunk street market in the rain",
    "a red fox sleeping in fresh snow",
    "a cozy cabin interior with a fireplace",
    "an astronaut riding a bicycle on the moon",
    "a bowl of ramen with steam rising",
    "a knight in ornate armour holding a lantern",
    "a futuristic city skyline at sunrise",
    "a cat wearing a tiny wizard hat",
    "a watercolor map of an imaginary island",
    "a vintage car parked by a desert diner",
    "a dragon curled around a mountain peak",
    "portrait of an old fisherman with a weathered face",
    "a greenhouse full of glowing plants",
    "a frog in a business suit giving a speech",
    "a library with endless spiral staircases",
    "a samurai standing in a bamboo forest",
    "a steampunk airship above the clouds",
    "a logo of a stylised brain made of circuits",
];

pub const IMAGE_STYLES: &[&str] = &[
    "anime style",
    "photorealistic",
    "oil painting",
    "digital art",
    "studio ghibli inspired",
    "cinematic lighting",
    "comic book style",
    "pixel art",
    "ink sketch",
    "3d render",
    "film grain photograph",
    "flat vector illustration",
];

pub const IMAGE_DETAILS: &[&str] = &[
    "highly detailed",
    "soft light",
    "volumetric fog",
    "sharp focus",
    "vivid colors",
    "muted palette",
    "wide angle",
    "bokeh",
    "8k",
    "golden hour",
    "dramatic shadows",
    "intricate background",
    "masterpiece",
    "best quality",
];

pub const NEGATIVE_PROMPTS: &[&str] = &[
    "blurry, lowres, bad anatomy",
    "worst quality, low quality, jpeg artifacts",
    "extra fingers, deformed hands, watermark",
    "text, signature, cropped",
    "nsfw, ugly, duplicate",
    "",
];

/// A tool a client offers the model (era 2).
pub struct Tool {
    pub name: &'static str,
    pub description: &'static str,
    /// Its parameters; the first is required.
    pub params: &'static [Param],
}

pub struct Param {
    pub name: &'static str,
    /// Its JSON type.
    pub ty: &'static str,
    pub description: &'static str,
}

const fn param(name: &'static str, ty: &'static str, description: &'static str) -> Param {
    Param {
        name,
        ty,
        description,
    }
}

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "get_weather",
        description: "The current weather in a city.",
        params: &[
            param("city", "string", "The city, e.g. Paris"),
            param("unit", "string", "celsius or fahrenheit"),
        ],
    },
    Tool {
        name: "get_token_price",
        description: "The latest price of a crypto token in US dollars.",
        params: &[param(
            "symbol",
            "string",
            "The token's ticker symbol, e.g. ETH",
        )],
    },
    Tool {
        name: "search_web",
        description: "Searches the web and returns the titles and snippets of the top results.",
        params: &[
            param("query", "string", "What to search for"),
            param("max_results", "integer", "At most this many results"),
        ],
    },
    Tool {
        name: "run_sql",
        description: "Runs a read-only SQL query on the analytics database.",
        params: &[param("query", "string", "A single SELECT statement")],
    },
];

/// Arguments a tool call passes, and what the tool returns, per tool above.
pub const TOOL_CALLS: &[(&str, &str)] = &[
    (
        r#"{"city": "Lisbon", "unit": "celsius"}"#,
        r#"{"temperature": 19, "sky": "clear", "wind_kmh": 12}"#,
    ),
    (
        r#"{"symbol": "ETH"}"#,
        r#"{"symbol": "ETH", "price_usd": 2431.18, "change_24h": -1.7}"#,
    ),
    (
        r#"{"query": "best budget GPU for stable diffusion", "max_results": 3}"#,
        r#"[{"title": "Choosing a GPU for image generation", "snippet": "Memory matters more than clock speed."}]"#,
    ),
    (
        r#"{"query": "SELECT count(*) FROM jobs WHERE status = 'ok'"}"#,
        r#"[{"count": 48213}]"#,
    ),
];
