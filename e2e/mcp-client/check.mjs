// The official MCP SDK's client against a server: connect over Streamable HTTP with a
// bearer token, list the tools and call one. Prints one JSON line
// {"tools": [...names], "call": <the call's result>} or exits non-zero.
//
// usage: node check.mjs <server url> <token> <tool> <arguments as JSON>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token, tool, args] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "nightshift-check", version: "1.0.0" });
const timer = setTimeout(() => {
  console.error("no answer within 60 s");
  process.exit(2);
}, 60_000);
await client.connect(transport);
const listed = await client.listTools();
const call = await client.callTool({ name: tool, arguments: JSON.parse(args || "{}") });
console.log(JSON.stringify({ tools: listed.tools.map((t) => t.name), call }));
clearTimeout(timer);
await client.close();
