// New: ++ on a string does not convert it to a number. Node: 5 (number), 6,
// 1. Addon 8.0.0: '5' (string), '51', true.
const R = vmImport(1);
vmExport(1, () => {
  let s = '5';
  R('s++ returns', s++);
  R('s after s++', s);
  let b = true;
  R('b-- returns', b--);
});
