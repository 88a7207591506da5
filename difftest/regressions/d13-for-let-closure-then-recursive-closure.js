// Known defect 13: a closure created in a for (let ...) loop followed by a
// recursive closure in a later block. Node: 0, 3. Addon 8.0.0: fatal
// MVM_E_INVALID_BYTECODE (before the first report).
const R = vmImport(1);
vmExport(1, () => {
  const fs = [];
  for (let i = 0; i < 2; i++) { fs.push(() => i); }
  R('closure', fs[0]());
  {
    const count = (m) => m <= 0 ? 0 : 1 + count(m - 1);
    R('recursive closure', count(3));
  }
});
