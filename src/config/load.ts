// Options from a config file with the command-line flags laid over it, validated: used at start and on
// every reload (SIGHUP), so a reload sees the same flags win.
import { defaultOptions, validateOptions, type Options } from "../options.ts";
import { applyConfig } from "./apply.ts";
import { parseConfigFile } from "./parser.ts";
import { ownShare } from "../workers/worker.ts";

export interface LoadedOptions {
  options: Options;
  /** Lines to show (e.g. `a.conf:2:1: invalid use of field "ping_interval": …`); the options are usable. */
  warnings: string[];
}

/** Throws ConfigError/ConfigErrors (file problems, with positions) or OptionsError (the merged result is invalid). */
export function loadOptions(configFile: string, flagged: Partial<Options>): LoadedOptions {
  const options: Options = { ...defaultOptions, wsAllowedOrigins: [] };
  const warnings = applyConfig(parseConfigFile(configFile), options, configFile);
  Object.assign(options, flagged);
  if (flagged.wsAllowedOrigins) options.wsAllowedOrigins = [...flagged.wsAllowedOrigins];
  options.configFile = configFile;
  ownShare(options);
  validateOptions(options);
  return { options, warnings };
}
