// The console page's script and style sheet, bundled by Bun's bundler from src/console/ui/ (Preact and
// uPlot included: nothing is fetched from another origin, ever).
//
// - From source (`bun src/main.ts`, the tests): the UI is bundled here, once, when the console starts
//   (~20 ms; nothing waits for it but the first page), so an edit to the UI shows at the next start.
// - The compiled binary (`npm run build`): the UI sources are not inside it. scripts/build.ts bundles the
//   UI first and writes the result into ui-bundle.generated.ts (git-ignored), which the compile step embeds.
import { existsSync } from "node:fs";
import path from "node:path";

export interface ConsoleAssets {
  js: string;
  css: string;
}

/** Set by scripts/run-bundle.ts (a define) in bin/natter's bundle: the checkout's src/ directory. */
declare const NATTER_SOURCE_ROOT: string | undefined;

/** The UI's entry point (in bin/natter's bundle, in the sources it was made from). */
export const UI_ENTRY = typeof NATTER_SOURCE_ROOT === "string" ? path.join(NATTER_SOURCE_ROOT, "console", "ui", "main.tsx") : path.join(import.meta.dirname, "ui", "main.tsx");

/** Bundles the UI with Bun's bundler (what scripts/build.ts calls too). */
export async function bundleConsoleUi(): Promise<ConsoleAssets> {
  const r = await Bun.build({ entrypoints: [UI_ENTRY], target: "browser", minify: true, format: "esm" });
  if (!r.success) throw new Error(r.logs.map((l) => String(l)).join("\n"));
  let js = "";
  let css = "";
  for (const out of r.outputs) {
    if (out.path.endsWith(".css")) css += await out.text();
    else if (out.kind === "entry-point") js += await out.text();
  }
  return { js, css };
}

let loading: Promise<ConsoleAssets> | null = null;

export function consoleAssets(): Promise<ConsoleAssets> {
  loading ??= (async () => {
    if (existsSync(UI_ENTRY)) return bundleConsoleUi();
    // @ts-ignore: written by scripts/build.ts before it compiles the binary.
    const embedded = (await import("./ui-bundle.generated.ts")) as { CONSOLE_ASSETS: ConsoleAssets };
    return embedded.CONSOLE_ASSETS;
  })();
  return loading;
}
