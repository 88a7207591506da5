// Known defect 10: string to number conversion is wrong except for plain
// integers. Node: 3.14159, 1000, 15, -0. Addon 8.0.0: other (sometimes
// garbage) numbers.
const R = vmImport(1);
vmExport(1, () => {
  const a = '3.14159'; const b = '1e3'; const c = '0x10'; const d = '-0';
  R("1 * '3.14159'", 1 * a, a);
  R("+'1e3'", +b, b);
  R("'0x10' - 1", c - 1, c);
  R("+'-0'", +d, d);
});
