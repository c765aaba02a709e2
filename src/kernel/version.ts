/** The product version: `portcullis --version`, GET / and the Server/Via product token. */
export const version = '0.1.0';

/** Product token for `Server` / `Via` headers (RFC 9110 §10.2.4, §7.6.3), as Kong's `kong/3.x`. */
export const productToken = `portcullis/${version}`;
