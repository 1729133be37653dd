/**
 * The source reads the size of a byte array with `.length`, never `.byteLength`. For a Uint8Array
 * (a Buffer too) the two are the same number, but Node 20's optimizing compiler inlines only
 * `.length`: `.byteLength` stays a generic property lookup and a call of the getter, about 20 ns
 * per read against 1–3 ns. Five such reads per message were 40 % of the shared-memory channel's
 * send of a 64 B message (docs/benchmarks.md, 2026-11-29). The check uses the type checker, so a
 * `byteLength` of an ArrayBuffer or of any other view, where `.length` means something else or
 * nothing, is left alone.
 */
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** `file:line: expression` for every `.byteLength` read of a value typed Uint8Array or Buffer. */
function byteLengthReadsOfByteArrays(): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(
    `${root}tsconfig.json`,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (diagnostic) => {
        throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n'));
      },
    },
  );
  if (!config) throw new Error('tsconfig.json could not be read');
  const sources = config.fileNames.filter((file) => file.startsWith(`${root}src/`));
  expect(sources.length).toBeGreaterThan(50);
  const program = ts.createProgram(sources, config.options);
  const checker = program.getTypeChecker();
  const isByteArray = (type: ts.Type): boolean => {
    const parts = type.isUnion() ? type.types : [type];
    return parts.every((part) => /^(Uint8Array|Buffer)(<.*>)?$/.test(checker.typeToString(part)));
  };
  const found: string[] = [];
  for (const file of program.getSourceFiles()) {
    if (!file.fileName.startsWith(`${root}src/`)) continue;
    const visit = (node: ts.Node): void => {
      if (
        ts.isPropertyAccessExpression(node) &&
        node.name.text === 'byteLength' &&
        isByteArray(checker.getNonNullableType(checker.getTypeAtLocation(node.expression)))
      ) {
        const { line } = file.getLineAndCharacterOfPosition(node.getStart());
        found.push(`${file.fileName.slice(root.length)}:${line + 1}: ${node.getText()}`);
      }
      ts.forEachChild(node, visit);
    };
    visit(file);
  }
  return found;
}

describe('byte arrays in src/', () => {
  it('have their size read with .length, not .byteLength', { timeout: 120_000 }, () => {
    expect(byteLengthReadsOfByteArrays()).toEqual([]);
  });
});
