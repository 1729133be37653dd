// NamedPipe is the pipe:// case of the socket module: one implementation, both APIs.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, listen, NamedPipe, NamedPipeServer, SocketServer } from '../../src/index.js';
import { isolateRuntimeDir, watchdog } from '../helpers.js';

let env: ReturnType<typeof isolateRuntimeDir>;
beforeEach(() => {
  env = isolateRuntimeDir();
});
afterEach(() => env.cleanup());

describe('pipe:// and NamedPipe', () => {
  it('NamedPipe.listen and listen("pipe://…") are the same server; clients of either API interoperate', async () => {
    await using server = await NamedPipe.listen<string>('shared');
    expect(server).toBeInstanceOf(NamedPipeServer);
    expect(server).toBeInstanceOf(SocketServer);
    expect(server.url).toBe('pipe://shared');
    expect(server.name).toBe('shared');
    server.handle('upper', (s: string) => s.toUpperCase());
    const viaUrl = await connect<string>('pipe://shared');
    const viaName = await NamedPipe.connect<string>('shared');
    expect(await viaUrl.request('upper', 'url')).toBe('URL');
    expect(await viaName.request('upper', 'name')).toBe('NAME');
    await viaName.send('hello');
    const conns = [await server.accept(), await server.accept()];
    expect(await watchdog(conns[1]!.receive(), 5000, 'message')).toBe('hello');
    await Promise.all([viaUrl.close(), viaName.close()]);
  });

  it('listen("pipe://…") is found by NamedPipe.connect', async () => {
    await using server = await listen('pipe://by-url');
    expect(server.path).toBe(`${env.dir}/by-url.sock`);
    const client = await NamedPipe.connect('by-url');
    expect((await server.accept({ timeout: 5000 })).peer.transport).toBe('pipe');
    await client.close();
  });
});
