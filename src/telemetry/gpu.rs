//! NVIDIA GPUs through NVML, loaded at run time with `dlopen("libnvidia-ml.so.1")`.
//!
//! No library, no driver or no device is a normal answer (an empty list with a note), never an
//! error: llmbench has no build- or link-time dependency on CUDA.

use std::ffi::{CStr, c_char, c_int, c_uint, c_ulonglong, c_void};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

/// One GPU as detected.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpuInfo {
    /// Index in NVML order.
    pub index: u32,
    /// Product name.
    pub name: String,
    /// Total memory (bytes).
    pub memory_total_bytes: u64,
    /// Driver version.
    pub driver: Option<String>,
}

/// One reading of one GPU.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// Index in NVML order.
    pub index: u32,
    /// Busy time over the driver's last sample period (percent).
    pub util_pct: Option<f64>,
    /// Memory in use (bytes).
    pub memory_used_bytes: Option<u64>,
    /// Board power draw (watts).
    pub power_w: Option<f64>,
}

type Device = *mut c_void;

#[repr(C)]
#[derive(Default)]
struct Memory {
    total: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

#[repr(C)]
#[derive(Default)]
struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

/// The loaded NVML library (kept open for the life of the process).
pub struct Nvml {
    count: unsafe extern "C" fn(*mut c_uint) -> c_int,
    handle: unsafe extern "C" fn(c_uint, *mut Device) -> c_int,
    name: unsafe extern "C" fn(Device, *mut c_char, c_uint) -> c_int,
    memory: unsafe extern "C" fn(Device, *mut Memory) -> c_int,
    utilization: unsafe extern "C" fn(Device, *mut Utilization) -> c_int,
    power: unsafe extern "C" fn(Device, *mut c_uint) -> c_int,
    driver: unsafe extern "C" fn(*mut c_char, c_uint) -> c_int,
    /// `nvmlDeviceGetTotalEnergyConsumption` (mJ since the driver loaded; Volta and later).
    /// Optional: a driver without it still gives everything else.
    energy: Option<unsafe extern "C" fn(Device, *mut c_ulonglong) -> c_int>,
}

// SAFETY: NVML's API is documented thread-safe; the struct holds only function pointers.
unsafe impl Send for Nvml {}
unsafe impl Sync for Nvml {}

const LIBS: [&CStr; 2] = [c"libnvidia-ml.so.1", c"libnvidia-ml.so"];

/// Looks up `name` in `lib`, as a function pointer of type `T`.
///
/// # Safety
/// `T` must be the function's true signature.
unsafe fn sym<T: Copy>(lib: *mut c_void, name: &CStr) -> Result<T, String> {
    // SAFETY: lib is a live handle from dlopen; name is NUL-terminated.
    let p = unsafe { libc::dlsym(lib, name.as_ptr()) };
    if p.is_null() {
        return Err(format!("NVML lacks {}", name.to_string_lossy()));
    }
    // SAFETY: the caller vouches for the signature; T is a function pointer of pointer size.
    Ok(unsafe { std::mem::transmute_copy::<*mut c_void, T>(&p) })
}

impl Nvml {
    /// The process-wide NVML, loaded and initialised on first use; `Err` says why not.
    pub fn get() -> Result<&'static Nvml, String> {
        static NVML: OnceLock<Result<Nvml, String>> = OnceLock::new();
        NVML.get_or_init(Self::load).as_ref().map_err(Clone::clone)
    }

    fn load() -> Result<Nvml, String> {
        if std::env::var_os("LLMBENCH_NO_NVML").is_some() {
            return Err("NVML disabled by LLMBENCH_NO_NVML".into());
        }
        let lib = LIBS
            .iter()
            // SAFETY: dlopen with a NUL-terminated name; a null result is handled.
            .map(|n| unsafe { libc::dlopen(n.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) })
            .find(|h| !h.is_null())
            .ok_or_else(|| "no NVIDIA driver (libnvidia-ml.so.1 not found)".to_string())?;
        // SAFETY: signatures as in nvml.h (v2 entry points).
        unsafe {
            let init: unsafe extern "C" fn() -> c_int = sym(lib, c"nvmlInit_v2")?;
            let rc = init();
            if rc != 0 {
                return Err(format!("NVML failed to initialise (nvmlReturn {rc})"));
            }
            Ok(Nvml {
                count: sym(lib, c"nvmlDeviceGetCount_v2")?,
                handle: sym(lib, c"nvmlDeviceGetHandleByIndex_v2")?,
                name: sym(lib, c"nvmlDeviceGetName")?,
                memory: sym(lib, c"nvmlDeviceGetMemoryInfo")?,
                utilization: sym(lib, c"nvmlDeviceGetUtilizationRates")?,
                power: sym(lib, c"nvmlDeviceGetPowerUsage")?,
                driver: sym(lib, c"nvmlSystemGetDriverVersion")?,
                energy: sym(lib, c"nvmlDeviceGetTotalEnergyConsumption").ok(),
            })
        }
    }

    fn devices(&self) -> Vec<(u32, Device)> {
        let mut n: c_uint = 0;
        // SAFETY: out-pointers to live locals.
        if unsafe { (self.count)(&mut n) } != 0 {
            return Vec::new();
        }
        (0..n)
            .filter_map(|i| {
                let mut d: Device = std::ptr::null_mut();
                // SAFETY: as above.
                (unsafe { (self.handle)(i, &mut d) } == 0).then_some((i, d))
            })
            .collect()
    }

    fn string(f: impl Fn(*mut c_char, c_uint) -> c_int) -> Option<String> {
        let mut buf = [0 as c_char; 128];
        if f(buf.as_mut_ptr(), buf.len() as c_uint) != 0 {
            return None;
        }
        // SAFETY: NVML NUL-terminates within the given length; the last byte stays 0 anyway.
        buf[127] = 0;
        Some(
            unsafe { CStr::from_ptr(buf.as_ptr()) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// The GPUs with name, memory and driver.
    pub fn gpus(&self) -> Vec<GpuInfo> {
        // SAFETY: buffer pointer and length from `string`.
        let driver = Self::string(|p, n| unsafe { (self.driver)(p, n) });
        self.devices()
            .into_iter()
            .map(|(index, d)| {
                let mut mem = Memory::default();
                // SAFETY: d is a handle NVML gave; out-pointer to a live local.
                let total = (unsafe { (self.memory)(d, &mut mem) } == 0).then_some(mem.total);
                GpuInfo {
                    index,
                    // SAFETY: as above.
                    name: Self::string(|p, n| unsafe { (self.name)(d, p, n) }).unwrap_or_default(),
                    memory_total_bytes: total.unwrap_or(0),
                    driver: driver.clone(),
                }
            })
            .collect()
    }

    /// Utilisation, memory and power of every GPU now.
    pub fn sample(&self) -> Vec<GpuSample> {
        self.devices()
            .into_iter()
            .map(|(index, d)| {
                let mut mem = Memory::default();
                let mut util = Utilization::default();
                let mut mw: c_uint = 0;
                // SAFETY: d is a handle NVML gave; out-pointers to live locals.
                unsafe {
                    GpuSample {
                        index,
                        util_pct: ((self.utilization)(d, &mut util) == 0)
                            .then_some(util.gpu as f64),
                        memory_used_bytes: ((self.memory)(d, &mut mem) == 0).then_some(mem.used),
                        power_w: ((self.power)(d, &mut mw) == 0).then_some(mw as f64 / 1000.0),
                    }
                }
            })
            .collect()
    }
}

impl Nvml {
    /// The energy counters of every GPU summed, in joules; `None` when there is no GPU, the
    /// driver has no counter, or any GPU cannot say (a partial sum would be a wrong figure).
    pub fn energy_j(&self) -> Option<f64> {
        let f = self.energy?;
        let devices = self.devices();
        if devices.is_empty() {
            return None;
        }
        let mut mj: u128 = 0;
        for (_, d) in devices {
            let mut e: c_ulonglong = 0;
            // SAFETY: d is a handle NVML gave; out-pointer to a live local.
            if unsafe { f(d, &mut e) } != 0 {
                return None;
            }
            mj += e as u128;
        }
        Some(mj as f64 / 1000.0)
    }
}

/// The GPUs' summed energy counters now (J), `None` without NVML or a counter: read at the
/// start and the end of each measured window.
pub fn energy_j() -> Option<f64> {
    Nvml::get().ok()?.energy_j()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absence_of_nvml_is_an_answer() {
        // On a machine without an NVIDIA driver this is Err with a reason; with one, a list.
        match Nvml::get() {
            Ok(n) => {
                let gpus = n.gpus();
                assert_eq!(n.sample().len(), gpus.len());
            }
            Err(why) => assert!(!why.is_empty()),
        }
    }
}
