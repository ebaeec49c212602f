// What `npm start` runs: the server from its bundle (bundle.mjs), made first when the code changed.
import { pathToFileURL } from "node:url";
import { currentBundle } from "./bundle.mjs";

// Before any of the server's code loads: graphql-js reads it once, as it loads.
process.env.NODE_ENV ??= "production";
const entry = await currentBundle({
  onBuild: () => console.error("Bundling the server's code (once after each change; a few seconds)..."),
});
// Stack traces name the TypeScript files and lines, not the bundle's.
process.setSourceMapsEnabled(true);
await import(pathToFileURL(entry).href);
