// The baseline pool worker of bench/process.bench.ts: Node's IPC channel (fork + process.send).
// Each message is [id, items]; the answer is [id, results], each item squared, the same task as
// process-square-task.ts. Items are handled in a loop, as a hand-written chunked pool would.
process.on('message', (message) => {
  const [id, items] = message as [number, number[]];
  const results = new Array<number>(items.length);
  for (let i = 0; i < items.length; i++) results[i] = items[i]! * items[i]!;
  process.send!([id, results]);
});
