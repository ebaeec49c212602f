import type { App } from "./app.js";
import { ensureAdmin, seedDemoData, type DemoSeed } from "./seed.js";

export interface BootstrapResult {
  demo: DemoSeed | null;
  admin: "created" | "exists" | null;
}

/** Demo data into an empty database (unless SEED_DEMO=false), then the operator's admin if asked. */
export async function bootstrapData(app: App, progress: (step: string) => void = () => {}): Promise<BootstrapResult> {
  const { config } = app;
  const { prisma } = app.services;
  let demo: DemoSeed | null = null;
  if (config.seedDemo && (await prisma.user.count()) === 0) {
    progress("Seed: adding demo data to the empty database");
    demo = await seedDemoData(app.services, { password: config.demoPassword });
  }
  if (config.admin) progress(`Admin: making sure ${config.admin.email} exists`);
  const admin = config.admin ? await ensureAdmin(prisma, config.admin) : null;
  return { demo, admin };
}

export function describeDemo(demo: DemoSeed): string {
  const width = Math.max(...demo.accounts.map((a) => a.username.length));
  const rows = demo.accounts.map(
    (a) => `    ${a.username.padEnd(width)}  ${a.role.padEnd(12)}  ${a.partner ?? "(company staff)"}`,
  );
  return [
    "Demo sign-in (login with a username or its @example.com email):",
    ...rows,
    `  password for every demo account: ${demo.password}`,
  ].join("\n");
}
