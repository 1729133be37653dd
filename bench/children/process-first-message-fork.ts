// The baseline of process-first-message-ipckit.ts: one process.send as soon as it runs.
process.send!('hello', () => process.disconnect());
