import js from "@eslint/js";
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist", "node_modules", "src/bindings"] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    // The end-to-end tests run in Node, not the webview.
    files: ["e2e/**/*.mjs"],
    languageOptions: {
      globals: { process: "readonly", Buffer: "readonly", fetch: "readonly", console: "readonly", AbortSignal: "readonly" },
    },
  },
);
