// Known defect 13 (wider than first described): after a closure created in
// a for (let ...) loop, any later closure that captures a local of the
// function. Node: 1, 5. Addon 8.0.0: fatal MVM_E_INVALID_BYTECODE when the
// second closure is created.
const R = vmImport(1);
vmExport(1, () => {
  const a = [];
  for (let i = 0; i < 2; i++) { a.push(() => i); }
  R('a[1]()', a[1]());
  let v = 5;
  const f = () => v;
  R('f()', f());
});
