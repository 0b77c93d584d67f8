//! The Kubernetes objects `llmbench k8s` writes, as typed structures (the subset of the
//! `batch/v1` Job and `v1` Service schemas it uses, field names as the API spells them), and
//! the plan that builds them. Pure: no I/O.
//!
//! One Indexed Job runs the N shards (`completionMode: Indexed`: pod i gets completion index
//! i, passed to `run --shard $(JOB_COMPLETION_INDEX)/N`); a headless Service names shard 0's
//! pod, whose clock sidecar (`llmbench clock`) every shard measures its offset against.

use std::collections::BTreeMap;

use serde::Serialize;

/// Port of the clock endpoint.
pub const CLOCK_PORT: u16 = 7777;

/// Where each shard's result goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Results {
    /// Standard output, collected with `kubectl logs` (the console text goes to standard
    /// error, which `kubectl logs` shows too; `merge` reads the result out of such a log).
    Stdout,
    /// A PersistentVolumeClaim mounted at `/results`: `shard-K.json` per shard.
    Claim(String),
}

/// What the manifest is built from (checked by `settings::k8s`).
#[derive(Debug, Clone)]
pub struct Plan {
    /// Name of the Job (and prefix of the Service).
    pub name: String,
    /// The container image holding llmbench.
    pub image: String,
    /// Shards (pods).
    pub shards: u32,
    /// `run`'s flags, the URL first, without the shard's own.
    pub run_args: Vec<String>,
    /// `--start-at` of every shard (RFC 3339).
    pub start_at: String,
    /// CPU request and limit of each shard ("2", "500m").
    pub cpu: String,
    /// Memory request and limit of each shard ("1Gi").
    pub memory: String,
    /// Where results go.
    pub results: Results,
    /// The API key: (variable, Secret, key in it); read from the Secret, never written here.
    pub api_key: Option<(String, String, String)>,
}

/// `metadata`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    /// Object name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Labels.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A `batch/v1` Job.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    /// `batch/v1`.
    pub api_version: &'static str,
    /// `Job`.
    pub kind: &'static str,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: JobSpec,
}

/// `Job.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// `Indexed`.
    pub completion_mode: &'static str,
    /// Shards.
    pub completions: u32,
    /// Shards, all at once.
    pub parallelism: u32,
    /// 0: a failed shard is not rerun (its start time would have passed).
    pub backoff_limit: u32,
    /// The pod.
    pub template: PodTemplateSpec,
}

/// `spec.template`.
#[derive(Debug, Clone, Serialize)]
pub struct PodTemplateSpec {
    /// Pod labels.
    pub metadata: ObjectMeta,
    /// Pod spec.
    pub spec: PodSpec,
}

/// A pod's spec.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec {
    /// `Never`.
    pub restart_policy: &'static str,
    /// Sidecars (restartPolicy Always): the clock endpoint.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<Container>,
    /// The shard.
    pub containers: Vec<Container>,
    /// The results volume.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Volume>,
}

/// A container.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Name.
    pub name: String,
    /// Image.
    pub image: String,
    /// `Always` on a sidecar.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restart_policy: Option<&'static str>,
    /// Arguments to the image's entry point (`llmbench`).
    pub args: Vec<String>,
    /// Environment.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// Ports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Requests and limits.
    pub resources: Resources,
    /// Mounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volume_mounts: Vec<VolumeMount>,
}

/// An environment variable read from a field of the pod.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar {
    /// Name.
    pub name: String,
    /// Its source.
    pub value_from: EnvVarSource,
}

/// `valueFrom`: a field of the pod or a key of a Secret.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVarSource {
    /// A field of the pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
    /// A key of a Secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
}

/// `secretKeyRef`.
#[derive(Debug, Clone, Serialize)]
pub struct SecretKeyRef {
    /// The Secret.
    pub name: String,
    /// The key in it.
    pub key: String,
}

/// `fieldRef`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// The field's path.
    pub field_path: String,
}

/// A container port.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    /// Name.
    pub name: String,
    /// Port.
    pub container_port: u16,
    /// `TCP`.
    pub protocol: &'static str,
}

/// `resources`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resources {
    /// Requests.
    pub requests: BTreeMap<String, String>,
    /// Limits.
    pub limits: BTreeMap<String, String>,
}

/// A volume mount.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount {
    /// Volume name.
    pub name: String,
    /// Where.
    pub mount_path: String,
}

/// A volume backed by a claim.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Volume {
    /// Name.
    pub name: String,
    /// The claim.
    pub persistent_volume_claim: ClaimSource,
}

/// `persistentVolumeClaim`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource {
    /// Its name.
    pub claim_name: String,
}

/// A `v1` Service.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    /// `v1`.
    pub api_version: &'static str,
    /// `Service`.
    pub kind: &'static str,
    /// Name and labels.
    pub metadata: ObjectMeta,
    /// The spec.
    pub spec: ServiceSpec,
}

/// `Service.spec`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// `None`: headless, the name resolves to the pod.
    #[serde(rename = "clusterIP")]
    pub cluster_ip: &'static str,
    /// Shard 0's pod.
    pub selector: BTreeMap<String, String>,
    /// The clock port.
    pub ports: Vec<ServicePort>,
}

/// A service port.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    /// Name.
    pub name: String,
    /// Port.
    pub port: u16,
    /// `TCP`.
    pub protocol: &'static str,
}

/// The label the Job controller puts on each pod with its completion index.
const INDEX_LABEL: &str = "batch.kubernetes.io/job-completion-index";

/// The Service and the Job of a plan.
pub fn manifest(p: &Plan) -> (Service, Job) {
    let labels = |extra: Option<(&str, &str)>| {
        let mut l = BTreeMap::from([
            ("app.kubernetes.io/name".to_string(), "llmbench".to_string()),
            ("llmbench/plan".to_string(), p.name.clone()),
        ]);
        if let Some((k, v)) = extra {
            l.insert(k.to_string(), v.to_string());
        }
        l
    };
    let clock_service = format!("{}-clock", p.name);
    let resources = Resources {
        requests: BTreeMap::from([
            ("cpu".to_string(), p.cpu.clone()),
            ("memory".to_string(), p.memory.clone()),
        ]),
        limits: BTreeMap::from([
            ("cpu".to_string(), p.cpu.clone()),
            ("memory".to_string(), p.memory.clone()),
        ]),
    };
    let index_env = EnvVar {
        name: "JOB_COMPLETION_INDEX".into(),
        value_from: EnvVarSource {
            field_ref: Some(FieldRef {
                field_path: format!("metadata.annotations['{INDEX_LABEL}']"),
            }),
            ..Default::default()
        },
    };
    let mut env = vec![index_env];
    if let Some((var, secret, key)) = &p.api_key {
        env.push(EnvVar {
            name: var.clone(),
            value_from: EnvVarSource {
                secret_key_ref: Some(SecretKeyRef {
                    name: secret.clone(),
                    key: key.clone(),
                }),
                ..Default::default()
            },
        });
    }
    let mut args = vec!["run".to_string()];
    args.extend(p.run_args.iter().cloned());
    args.extend([
        "--shard".to_string(),
        format!("$(JOB_COMPLETION_INDEX)/{}", p.shards),
        "--start-at".to_string(),
        p.start_at.clone(),
        "--clock".to_string(),
        format!("http://{clock_service}:{CLOCK_PORT}"),
        "-q".to_string(),
        "-o".to_string(),
    ]);
    let (mounts, volumes) = match &p.results {
        Results::Stdout => {
            args.push("-".into());
            (Vec::new(), Vec::new())
        }
        Results::Claim(claim) => {
            args.push("/results/shard-$(JOB_COMPLETION_INDEX).json".into());
            (
                vec![VolumeMount {
                    name: "results".into(),
                    mount_path: "/results".into(),
                }],
                vec![Volume {
                    name: "results".into(),
                    persistent_volume_claim: ClaimSource {
                        claim_name: claim.clone(),
                    },
                }],
            )
        }
    };
    let clock = Container {
        name: "clock".into(),
        image: p.image.clone(),
        restart_policy: Some("Always"),
        args: vec!["clock".into(), "--port".into(), CLOCK_PORT.to_string()],
        env: Vec::new(),
        ports: vec![ContainerPort {
            name: "clock".into(),
            container_port: CLOCK_PORT,
            protocol: "TCP",
        }],
        resources: Resources {
            requests: BTreeMap::from([
                ("cpu".to_string(), "100m".to_string()),
                ("memory".to_string(), "64Mi".to_string()),
            ]),
            limits: BTreeMap::from([
                ("cpu".to_string(), "200m".to_string()),
                ("memory".to_string(), "64Mi".to_string()),
            ]),
        },
        volume_mounts: Vec::new(),
    };
    let shard = Container {
        name: "shard".into(),
        image: p.image.clone(),
        restart_policy: None,
        args,
        env,
        ports: Vec::new(),
        resources,
        volume_mounts: mounts,
    };
    let service = Service {
        api_version: "v1",
        kind: "Service",
        metadata: ObjectMeta {
            name: Some(clock_service),
            labels: labels(None),
        },
        spec: ServiceSpec {
            cluster_ip: "None",
            selector: BTreeMap::from([
                ("llmbench/plan".to_string(), p.name.clone()),
                (INDEX_LABEL.to_string(), "0".to_string()),
            ]),
            ports: vec![ServicePort {
                name: "clock".into(),
                port: CLOCK_PORT,
                protocol: "TCP",
            }],
        },
    };
    let job = Job {
        api_version: "batch/v1",
        kind: "Job",
        metadata: ObjectMeta {
            name: Some(p.name.clone()),
            labels: labels(None),
        },
        spec: JobSpec {
            completion_mode: "Indexed",
            completions: p.shards,
            parallelism: p.shards,
            backoff_limit: 0,
            template: PodTemplateSpec {
                metadata: ObjectMeta {
                    name: None,
                    labels: labels(None),
                },
                spec: PodSpec {
                    restart_policy: "Never",
                    init_containers: vec![clock],
                    containers: vec![shard],
                    volumes,
                },
            },
        },
    };
    (service, job)
}

/// The manifest's text: the Service and the Job as two YAML documents (each written in
/// YAML's JSON form, which `kubectl apply -f` reads as it reads any YAML).
pub fn to_text(service: &Service, job: &Job) -> anyhow::Result<String> {
    Ok(format!(
        "# llmbench k8s: apply with `kubectl apply -f FILE`\n---\n{}\n---\n{}\n",
        serde_json::to_string_pretty(service)?,
        serde_json::to_string_pretty(job)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_is_indexed_and_each_shard_reads_its_index() {
        let p = Plan {
            name: "bench".into(),
            image: "example/llmbench:1".into(),
            shards: 3,
            run_args: vec!["http://vllm:8000".into(), "-r".into(), "30".into()],
            start_at: "2030-01-01T00:00:00Z".into(),
            cpu: "2".into(),
            memory: "1Gi".into(),
            results: Results::Stdout,
            api_key: Some(("OPENAI_API_KEY".into(), "vllm-key".into(), "api-key".into())),
        };
        let (svc, job) = manifest(&p);
        let j = serde_json::to_value(&job).unwrap();
        assert_eq!(j["spec"]["completionMode"], "Indexed");
        assert_eq!(j["spec"]["completions"], 3);
        let c = &j["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        assert!(
            args.windows(2)
                .any(|w| w == ["--shard", "$(JOB_COMPLETION_INDEX)/3"])
        );
        assert_eq!(c["env"][0]["name"], "JOB_COMPLETION_INDEX");
        assert_eq!(c["env"][1]["valueFrom"]["secretKeyRef"]["name"], "vllm-key");
        let s = serde_json::to_value(&svc).unwrap();
        assert_eq!(s["spec"]["clusterIP"], "None");
        assert_eq!(s["spec"]["selector"][INDEX_LABEL], "0");
    }
}
