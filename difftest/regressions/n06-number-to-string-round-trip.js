// New: number to string does not always give a string that reads back as the
// same number. 2 ** -24 (exactly 5.9604644775390625e-8, a power of two, where
// the gap to the next double below is half the gap above). Node:
// "5.960464477539063e-8". Addon 8.0.0: "5.960464477539062e-8", which reads
// back as the double below 2 ** -24.
const R = vmImport(1);
vmExport(1, () => {
  const x = 2 ** -24;
  R("'' + 2 ** -24", '' + x, x);
});
