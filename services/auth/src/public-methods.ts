// The AuthService methods callable without an access token. One list, read by
// the service's auth interceptor (server.ts) and by the edge's routing table
// (deploy/envoy/routes.ts), so the two can never disagree. Kept free of
// imports so the edge config generator can load it without the service.
export const publicAuthMethods = [
  "Register",
  "SendVerificationCode",
  "VerifyIdentity",
  "Login",
  "VerifySecondFactor",
  "Refresh",
  "RequestPasswordReset",
  "ResetPassword",
  "GetJwks",
  "GetOpenIdConfiguration",
] as const;
