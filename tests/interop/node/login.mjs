// Logs in to a server with node-tak's own password login (POST /oauth/token), then makes the calls
// CloudTAK makes with the token, and prints what happened as one JSON document on stdout.
//
//   node login.mjs URL USER PASSWORD [certificate|packages]
//
// "certificate" (the enrollment port): Marti/api/tls/config with the token cookie, then a client
// certificate through Marti/api/tls/signClient/v2. "packages" (a port serving the Marti API):
// Marti/sync/search through node-tak's Package.list.
import { TAKAPI, APIAuthPassword } from "@tak-ps/node-tak";

const [url, username, password, then] = process.argv.slice(2);
const out = { ok: false };
try {
  const api = await TAKAPI.init(new URL(url), new APIAuthPassword(username, password));
  out.claims = api.OAuth.parse(api.auth.jwt);
  if (then === "certificate") {
    out.config = await api.Credentials.config();
    out.certificate = (await api.Credentials.generate()).cert;
  } else if (then === "packages") {
    out.packages = await api.Package.list({ tool: "public" });
  }
  out.ok = true;
} catch (err) {
  out.status = err.status;
  out.message = err.message;
  out.safe = err.safe;
}
console.log(JSON.stringify(out));
