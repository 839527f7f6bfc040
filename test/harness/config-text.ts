// Options from a config file's text, in process: what the config tests of each area share.
import { applyConfig } from "../../src/config/apply.ts";
import { ConfigErrors, parseConfig } from "../../src/config/parser.ts";
import { defaultOptions, OptionsError, validateOptions, type Options } from "../../src/options.ts";

/** The options natter makes of `text` (and, with `validate`, the whole-options checks it runs at start). */
export function optionsFromText(text: string, validate = false): Options {
  const options: Options = { ...defaultOptions, wsAllowedOrigins: [], routes: [] };
  applyConfig(parseConfig(text, "t.conf"), options, "t.conf");
  if (validate) validateOptions(options);
  return options;
}

/** The error messages `text` gets: each ConfigError of the file, or the OptionsError of validation; [] when accepted. */
export function configErrorsOf(text: string, validate = false): string[] {
  try {
    optionsFromText(text, validate);
  } catch (error) {
    if (error instanceof ConfigErrors) return error.errors.map((e) => e.message);
    if (error instanceof OptionsError) return [error.message];
    throw error;
  }
  return [];
}
