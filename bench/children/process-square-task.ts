// The pool task of bench/process.bench.ts: the tiniest useful task, so the figure is the pool's
// own cost per task.
export default (n: number): number => n * n;
