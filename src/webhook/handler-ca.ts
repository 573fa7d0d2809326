// The CA bundle that sidecars use to verify the handler (env CHA_HANDLER_CA). It is
// re-read when the file changes, so that a rotated handler CA reaches every pod injected
// afterwards without a webhook restart. Pods injected earlier keep the bundle they got,
// which is why the handler's CA should be rotated with an overlap.
import { X509Certificate } from "node:crypto";
import { readFileSync, watch } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "pino";

export interface HandlerCa {
  /** The last valid bundle. */
  current(): string;
  close(): void;
}

/** Reads and checks the bundle now (throwing if it is unusable), then follows changes. */
export function watchHandlerCa(file: string, logger: Logger): HandlerCa {
  let pem = readBundle(file);
  logger.info({ file, certificates: countCertificates(pem) }, "loaded handler CA bundle");

  const reload = (): void => {
    try {
      const next = readBundle(file);
      if (next === pem) return;
      pem = next;
      logger.info({ file, certificates: countCertificates(pem) }, "reloaded handler CA bundle");
    } catch (err) {
      // A half-written file fails here; the next change event retries, and the last valid
      // bundle is injected meanwhile.
      logger.warn(
        { file, err: (err as Error).message },
        "handler CA reload failed; keeping the previous bundle",
      );
    }
  };

  // Watch the directory: Kubernetes swaps a symlink to update a mounted ConfigMap/Secret.
  let timer: NodeJS.Timeout | undefined;
  const watcher = watch(dirname(file), () => {
    clearTimeout(timer);
    timer = setTimeout(reload, 100);
  });

  return {
    current: () => pem,
    close: () => {
      clearTimeout(timer);
      watcher.close();
    },
  };
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

export function readBundle(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new Error(`cannot read the handler CA file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const blocks = text.match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new Error(`the handler CA file ${file} contains no PEM certificate`);
  for (const block of blocks) {
    try {
      new X509Certificate(block);
    } catch (err) {
      throw new Error(
        `the handler CA file ${file} holds a certificate that does not parse: ${(err as Error).message}`,
        { cause: err },
      );
    }
  }
  return text;
}

function countCertificates(pem: string): number {
  return pem.match(PEM_BLOCK)?.length ?? 0;
}
