// Known defect 11: push returns undefined and push(a, b) appends only a.
// Node: 2, 3, 'c'. Addon 8.0.0: undefined, 2, 'b'.
const R = vmImport(1);
vmExport(1, () => {
  const a = [1];
  R('push(x) returns', a.push('a'));
  a.push('b', 'c');
  R('length after push(b, c)', a.length);
  R('last', a[a.length - 1]);
});
