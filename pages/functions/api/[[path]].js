// Every request under /api/ on the Pages origin goes to the Worker, unchanged,
// through the service binding API (pages/wrangler.toml): the Worker sees the Pages
// origin as its own, so its cookies are first-party and its CSRF checks hold.
export function onRequest({ request, env }) {
  return env.API.fetch(request);
}
