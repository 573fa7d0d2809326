import { describe, expect, it } from "vitest";
import { RECOVERED_CONDITION, SIDECAR_NAME, STATE_VOLUME, TOKEN_VOLUME } from "../../src/names.ts";

describe("fixed interface", () => {
  it("keeps the names that DESIGN.md fixes", () => {
    expect(RECOVERED_CONDITION).toBe("coordinator-ha.io/recovered");
    expect(SIDECAR_NAME).toBe("coordinator-ha-recovery");
    expect(STATE_VOLUME).toBe("coordinator-ha-state");
    expect(TOKEN_VOLUME).toBe("coordinator-ha-token");
  });
});
