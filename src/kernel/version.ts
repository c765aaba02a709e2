/** The product version: `portcullis --version`, GET / and the Server/Via product token. */
export const version = '0.1.0';

/** Product token for `Server` / `Via` headers (RFC 9110 §10.2.4, §7.6.3), as Kong's `kong/3.x`. */
export const productToken = `portcullis/${version}`;

/**
 * The Kong release whose Admin API and declarative format we answer as (the last open-source
 * line). Kong clients read `GET /` `version` to pick behaviour (decK refuses non-3.0 files against
 * 3.x; the UI packages gate features by range).
 */
export const kongCompatibleVersion = '3.10.0';

/**
 * `GET /` `version`: Kong's release with our name as a pre-release tag, so go-kong
 * (`ParseSemanticVersion`: 3.10.0, the tag dropped for comparisons) and the UI packages' semver
 * check both read a 3.x release, and a human still sees which gateway answered.
 */
export const adminApiVersion = `${kongCompatibleVersion}-portcullis-${version}`;
