import { describe, expect, it } from "vitest";
import {
  PEER_TOKEN_AUDIENCE,
  RECOVERED_CONDITION,
  SIDECAR_NAME,
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
});
