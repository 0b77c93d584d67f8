use super::*;
use crate::cli::FileCommand;

fn run_cmd() -> clap::Command {
    FileCommand::Run.flags()
}

fn p(text: &str) -> anyhow::Result<ScenarioFile> {
    parse(Path::new("bench.toml"), text, &run_cmd())
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn err(text: &str) -> String {
    format!("{:#}", p(text).unwrap_err())
}

#[test]
fn a_file_is_the_words_of_its_command_line() {
    let f = p(r#"
url = "http://h:8000"
requests = 50
concurrency = 5
max_tokens = 100
temperature = 0.7
ignore-eos = true
no-stream = false
header = ["X-A: 1", "X-B: 2"]
slo = "ttft_p95<200ms"
"#)
    .unwrap();
    assert_eq!(f.groups.len(), 1);
    let w = words(&f.groups[0], &BTreeSet::new(), &[]);
    assert_eq!(
        w,
        s(&[
            "http://h:8000",
            "--requests=50",
            "--concurrency=5",
            "--max-tokens=100",
            "--temperature=0.7",
            "--ignore-eos",
            "--header=X-A: 1",
            "--header=X-B: 2",
            "--slo=ttft_p95<200ms",
        ])
    );
    // Lines are 1-based and point at the key.
    assert_eq!(f.place_of("max-tokens").unwrap(), "bench.toml:5: ");
}

#[test]
fn the_command_line_overrides_the_file_flag_by_flag() {
    let f = p("url = \"http://a\"\nrequests = 50\nconcurrency = 5\nheader = [\"X: 1\"]\n").unwrap();
    let cli = s(&["http://b", "-n", "7", "--header", "Y: 2"]);
    let given = given_on_command_line(&run_cmd(), &cli).unwrap();
    assert_eq!(
        given,
        ["headers", "requests", "url"]
            .into_iter()
            .map(String::from)
            .collect()
    );
    let w = words(&f.groups[0], &given, &cli);
    assert_eq!(
        w,
        s(&["--concurrency=5", "http://b", "-n", "7", "--header", "Y: 2"])
    );
    // A sweep's list on the command line is read as text, not rejected.
    let given = given_on_command_line(&run_cmd(), &s(&["-c", "1,2,4"])).unwrap();
    assert!(given.contains("concurrency"));
}

#[test]
fn named_scenarios_inherit_the_top_and_sweep_lists_join() {
    let f = p(r#"
requests = 10
prompt-tokens = 128
[scenario.lengths]
prompt-tokens = [16, 128, 512]
[scenario.workers]
concurrency = [1, 2, 4]
"#)
    .unwrap();
    let names: Vec<_> = f.groups.iter().map(|g| g.name.clone().unwrap()).collect();
    assert_eq!(names, ["lengths", "workers"]);
    assert_eq!(
        words(&f.groups[0], &BTreeSet::new(), &[]),
        s(&["--requests=10", "--prompt-tokens=16,128,512"])
    );
    assert_eq!(
        words(&f.groups[1], &BTreeSet::new(), &[]),
        s(&[
            "--requests=10",
            "--prompt-tokens=128",
            "--concurrency=1,2,4"
        ])
    );
}

#[test]
fn bad_keys_and_values_are_named_with_their_line() {
    let e = err("requests = 5\n\nconcurency = 4\n");
    assert!(
        e.contains("bench.toml:3: unknown key `concurency` (did you mean `concurrency`?)"),
        "{e}"
    );
    let e = err("requests = 5\nwhatever_this_is = 1\n");
    assert!(
        e.starts_with("bench.toml:2: unknown key `whatever_this_is`"),
        "{e}"
    );
    let e = err("ignore-eos = \"yes\"\n");
    assert!(
        e.starts_with("bench.toml:1: `ignore-eos` is a switch"),
        "{e}"
    );
    let e = err("requests = 5\nmodel = [\"a\", \"b\"]\n");
    assert!(
        e.starts_with("bench.toml:2: `model` takes one value"),
        "{e}"
    );
    let e = err("requests = 5\n[scenario.x]\nrequests = 3\nmodel = \"m\"\n");
    assert!(
        e.starts_with("bench.toml:4: `model` is the same for every scenario"),
        "{e}"
    );
    let e = err("requests = 5\nscenario = 3\n");
    assert!(
        e.starts_with("bench.toml:2: `scenario` holds named scenarios"),
        "{e}"
    );
    let e = err("requests = 5\nrate = nan\n");
    assert!(
        e.starts_with("bench.toml:2: `rate`: nan is not a finite number"),
        "{e}"
    );
    // TOML itself: the line of the syntax error.
    let e = err("requests = 5\nconcurrency = = 4\n");
    assert!(e.starts_with("bench.toml:2: "), "{e}");
    let e = err("requests = 5\nrequests = 6\n");
    assert!(e.starts_with("bench.toml:2: "), "{e}");
}

#[test]
fn the_example_files_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let f = read(&path, &run_cmd()).unwrap_or_else(|e| panic!("{e:#}"));
        assert!(!f.groups.is_empty());
        n += 1;
    }
    assert!(n >= 4, "{n} example files");
    let f = read(&dir.join("ollama-advanced.toml"), &run_cmd()).unwrap();
    assert_eq!(f.groups.len(), 3);
}
