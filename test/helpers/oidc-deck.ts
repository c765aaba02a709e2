/**
 * The decK document most openid-connect tests start from: service `s` (the echo upstream's
 * `/anything`), route `r` at `/api`, and the plugin enabled globally. `configYaml` holds extra
 * `config` lines, each indented by six spaces.
 */
export function oidcDeck(echoUrl: string, issuer: string, configYaml = ''): string {
  return `_format_version: "3.0"
services:
  - name: s
    url: ${echoUrl}/anything
    routes:
      - name: r
        paths: [/api]
plugins:
  - name: openid-connect
    config:
      issuer: ${issuer}
${configYaml}`;
}
