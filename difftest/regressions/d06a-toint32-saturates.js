// Known defect 6: ToInt32 saturates instead of wrapping modulo 2^32.
// Node: -1, 0, 1. Addon 8.0.0: -2147483648, -2147483648, -2147483648.
const R = vmImport(1);
vmExport(1, () => {
  const a = 4294967295;
  const b = Infinity;
  const c = 4294967297;
  R('0xFFFFFFFF | 0', a | 0, a);
  R('Infinity | 0', b | 0, b);
  R('4294967297 | 0', c | 0, c);
});
