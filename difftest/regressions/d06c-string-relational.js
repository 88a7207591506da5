// Known defect 6: relational operators on two strings are always false.
// Node: true, true, true. Addon 8.0.0: false, false, false.
const R = vmImport(1);
vmExport(1, () => {
  const a = 'a'; const b = 'b';
  R("'a' < 'b'", a < b, a, b);
  R("'b' > 'a'", b > a, b, a);
  R("'a' <= 'a'", a <= a, a, a);
});
