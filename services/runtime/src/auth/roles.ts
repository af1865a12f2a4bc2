// Roles as access tokens carry them (the `roles` claim) and as RPCs require
// them (the aviary.auth.v1.required_role method option). The option is read
// from the generated descriptors, so an RPC declares its role in its proto
// and nowhere else: the auth interceptor here and the edge generator both
// read it.
import { getOption, hasOption, type DescMethod } from "@bufbuild/protobuf";
import { Role, required_role } from "@aviary/gen/aviary/auth/v1/options_pb";

export { Role };

/** The claim value of each role (what `roles` in an access token lists). */
export const roleClaims = {
  [Role.MODERATOR]: "moderator",
  [Role.ADMIN]: "admin",
} as const satisfies Record<Exclude<Role, Role.UNSPECIFIED>, string>;

export type RoleClaim = (typeof roleClaims)[keyof typeof roleClaims];

export function roleClaimOf(role: Role): RoleClaim | undefined {
  return role === Role.UNSPECIFIED ? undefined : roleClaims[role];
}

export function roleFromClaim(claim: string): Role | undefined {
  for (const [role, name] of Object.entries(roleClaims)) if (name === claim) return Number(role) as Role;
  return undefined;
}

// Asked on every call: read each method's options once.
const requiredRoles = new WeakMap<DescMethod, Role | undefined>();

/** The role an RPC requires, or undefined when any signed-in user may call it. */
export function requiredRoleOf(method: DescMethod): Role | undefined {
  if (requiredRoles.has(method)) return requiredRoles.get(method);
  const role = hasOption(method, required_role) ? getOption(method, required_role) : Role.UNSPECIFIED;
  const required = role === Role.UNSPECIFIED ? undefined : role;
  requiredRoles.set(method, required);
  return required;
}

/** Whether token roles satisfy a requirement: the role itself, or admin (which holds every right). */
export function satisfiesRole(claims: readonly string[], required: Role): boolean {
  return claims.includes(roleClaims[Role.ADMIN]) || claims.includes(roleClaimOf(required) ?? "");
}
