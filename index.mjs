// ESM entry: the same module object as the CommonJS entry.
import Microvium from './index.js';

export default Microvium;
export const { restore, VM, MicroviumError, MicroviumUint8Array, engineVersion, ASYNC_IMPORT } = Microvium;
