import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  PEER_TOKEN_AUDIENCE,
  RECOVERED_CONDITION,
  SIDECAR_NAME,
  SIDECAR_PROBE_COMMAND,
  STATE_VOLUME,
  TOKEN_AUDIENCE,
  TOKEN_VOLUME,
} from "../../src/names.ts";

describe("fixed interface", () => {
  it("keeps the names that DESIGN.md fixes", () => {
    expect(RECOVERED_CONDITION).toBe("coordinator-ha.io/recovered");
    expect(SIDECAR_NAME).toBe("coordinator-ha-recovery");
    expect(STATE_VOLUME).toBe("coordinator-ha-state");
    expect(TOKEN_VOLUME).toBe("coordinator-ha-token");
    expect(TOKEN_AUDIENCE).toBe("coordinator-ha");
  });

  it("adds a peer audience that is not the handler's", () => {
    expect(PEER_TOKEN_AUDIENCE).toBe("coordinator-ha-peer");
  });

  it("runs the exec probes with the image's ENTRYPOINT", () => {
    const dockerfile = readFileSync(new URL("../../Dockerfile", import.meta.url), "utf8");
    const entrypoint = JSON.parse(/^ENTRYPOINT (.+)$/m.exec(dockerfile)![1]!) as string[];
    expect([...SIDECAR_PROBE_COMMAND]).toEqual([...entrypoint, "probe"]);
  });
});
