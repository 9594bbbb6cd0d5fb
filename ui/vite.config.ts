import { defineConfig } from "vitest/config";

// Tauri loads the built files from ui/dist; relative paths keep them working there.
export default defineConfig({
  base: "./",
  clearScreen: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    // Two windows: the main one and the always-on-top overlay.
    rollupOptions: { input: { main: "index.html", overlay: "overlay.html" } },
  },
  test: { environment: "jsdom", globals: true, include: ["src/**/*.test.ts"] },
});
