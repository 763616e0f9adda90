// onnxruntime-web for the live camera: the library loaded on first use, and a network's session
// on WebGPU where the browser has an adapter, else on WebAssembly (threads where the page is
// cross-origin isolated).

const ORT_MISSING =
  "Live mode needs onnxruntime-web, which this server's installation lacks " +
  "(from a source checkout: run `npm ci` in web/, as `make run` does; a wheel must be " +
  "built after `npm ci`).";

let ortPromise = null;

// onnxruntime-web is loaded on first use only: the photo page never pays for it.
export function loadOrt() {
  ortPromise ??= import("onnxruntime-web").then(
    (ort) => {
      // Threads need SharedArrayBuffer, which needs a cross-origin-isolated page: the server
      // sends COOP/COEP headers for that (restyle/service/web.py). Without isolation (a proxy
      // that drops the headers), one thread: slower, but it works.
      ort.env.wasm.numThreads = window.crossOriginIsolated
        ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1))
        : 1;
      return ort;
    },
    () => {
      ortPromise = null;
      throw new Error(ORT_MISSING);
    },
  );
  return ortPromise;
}

async function webGpuAvailable() {
  if (!navigator.gpu) return false;
  try {
    return (await navigator.gpu.requestAdapter()) !== null;
  } catch {
    return false;
  }
}

export async function createSession(ort, bytes) {
  if (await webGpuAvailable()) {
    try {
      const session = await ort.InferenceSession.create(bytes.slice(), {
        executionProviders: ["webgpu"],
      });
      return { session, backend: "WebGPU" };
    } catch (err) {
      console.warn("WebGPU could not run the network; using WebAssembly", err);
    }
  }
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  const threads = ort.env.wasm.numThreads;
  return { session, backend: `WASM, ${threads} thread${threads === 1 ? "" : "s"}` };
}
