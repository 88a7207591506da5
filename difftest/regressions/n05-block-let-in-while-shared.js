// New: a `let`/`const` declared in the body of a while loop is one variable
// for all iterations: closures made in different iterations all see the last
// value. (A for (let ...) loop is right.) Node: 0, 10. Addon 8.0.0: 20, 20.
const R = vmImport(1);
vmExport(1, () => {
  const fs = [];
  let i = 0;
  while (i < 3) {
    const x = i * 10;
    fs.push(() => x);
    i = i + 1;
  }
  R('fs[0]()', fs[0]());
  R('fs[1]()', fs[1]());
});
