import { z } from "zod";
import { hashPassword, verifyAgainstDecoy, verifyPassword } from "../auth/password.js";
import type { Context } from "./context.js";
import type { Prisma, User as UserRow } from "../generated/prisma/client.js";
import { readPolicy } from "./access.js";
import { builder } from "./builder.js";
import { selectsOnly } from "./planned-query.js";
import { badInput, clientError, conflict, isUniqueViolation, notFound, unauthenticated } from "../errors.js";
import { PartnerOrganization, partnerPolicy } from "./partner.js";
import { startsWithText } from "./text-search.js";

export const Role = builder.enumType("Role", {
  values: {
    admin: { description: "Company staff with every permission." },
    support: { description: "Company staff who read everything and write developer docs." },
    partnerAdmin: { description: "Manages one partner organisation's keys and details." },
    developer: { description: "Reads one partner organisation's keys, usage and docs." },
  } as const,
});

// Who may read a user: staff; the user themself (and whoever just proved the user's password in
// this request, for signUp/login payloads); and members of the same partner, which includes its
// primary contact. Nobody else, so partner members never see staff accounts or other partners'.

export const userPolicy = readPolicy<{ id: string; partnerId: string | null }, Prisma.UserWhereInput>({
  staff: true,
  self: "id",
  partnerMember: "partnerId",
});

/**
 * A user row already loaded (a relation whose target decides) when the viewer may read it, else
 * null, so such relations answer null instead of an error.
 */
export const readableUser = <T extends { id: string; partnerId: string | null }>(ctx: Context, user: T | null): T | null =>
  user && userPolicy.allows(ctx, user) ? user : null;

export const User = builder.prismaNode("User", {
  id: { field: "id" },
  // Select mode: a password hash is never read on the way to a response.
  select: { id: true, partnerId: true },
  description:
    "A person who signs in: company staff, or a member of one partner organisation. Readable by staff, by the user, and by members of the same partner (so a partner's primary contact too); to anyone else it does not exist.",
  nullable: true,
  findUnique: (id, ctx) => ({ id, AND: [userPolicy.where(ctx)] }),
  authScopes: (user) => userPolicy.scopes(user),
  fields: (t) => ({
    username: t.exposeString("username"),
    email: t.exposeString("email", {
      nullable: true,
      description: "Readable by the user, the company's staff, and members of the same partner; null otherwise.",
      authScopes: (user) => userPolicy.scopes(user),
      unauthorizedResolver: () => null,
    }),
    role: t.expose("role", { type: Role }),
    partner: t.relation("partner", {
      nullable: true,
      description: "The partner the user belongs to; null when none, or when the viewer may not read it.",
      authScopes: (user) => (user.partnerId ? partnerPolicy.scopes({ id: user.partnerId }) : true),
      unauthorizedResolver: () => null,
    }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

builder.prismaObjectField(PartnerOrganization, "members", (t) =>
  t.relatedConnection("members", {
    cursor: "id",
    description: "The partner's people, ordered by username.",
    totalCount: true,
    query: (_args, ctx) => ({ where: userPolicy.where(ctx), orderBy: [{ username: "asc" }, { id: "asc" }] }),
  }),
);

/**
 * Who the user directory (`users`) lists for a viewer: staff everyone, a partnerAdmin its own
 * partner's members, nobody else anyone.
 */
export const directoryPolicy = readPolicy<{ id: string; partnerId: string | null }, Prisma.UserWhereInput>({
  staff: true,
  partnerAdmin: "partnerId",
});

const userSearch = z.string().trim().min(1, "Search must not be empty").max(254, "Search must be at most 254 characters");

function directoryWhere(
  ctx: Context,
  args: { search?: string | null; role?: UserRow["role"] | null; partnerId?: { id: string } | null },
): Prisma.UserWhereInput {
  return {
    AND: [
      directoryPolicy.where(ctx),
      args.role ? { role: args.role } : {},
      args.partnerId ? { partnerId: args.partnerId.id } : {},
      args.search
        ? { OR: [{ usernameLower: startsWithText(args.search.toLowerCase()) }, { email: startsWithText(args.search.toLowerCase()) }] }
        : {},
    ],
  };
}

builder.queryFields((t) => ({
  users: t.prismaConnection(
    {
      type: "User",
      cursor: "id",
      description:
        "The user directory, ordered by username (ignoring case): every user for staff, their own partner's members for a partnerAdmin, nobody for anyone else.",
      authScopes: { signedIn: true },
      args: {
        search: t.arg.string({
          required: false,
          description: "The start of a username or email, matched literally (no wildcards), ignoring case.",
          validate: userSearch,
        }),
        role: t.arg({ type: Role, required: false }),
        partnerId: t.arg.globalID({ for: PartnerOrganization, required: false }),
      },
      totalCount: (_connection, args, ctx) => ctx.prisma.user.count({ where: directoryWhere(ctx, args) }),
      resolve: (query, _root, args, ctx) =>
        ctx.prisma.user.findMany({
          ...query,
          where: directoryWhere(ctx, args),
          orderBy: [{ usernameLower: "asc" }, { id: "asc" }],
        }),
    },
    { description: "A page of users." },
  ),
}));

interface AuthPayloadShape {
  token: string;
  expiresAt: Date;
  user: { id: string };
}

export const AuthPayload = builder.objectRef<AuthPayloadShape>("AuthPayload").implement({
  description: "A new session. Send the token as `Authorization: Bearer <token>`.",
  fields: (t) => ({
    token: t.exposeString("token", { description: "The session token (a JWT). Shown once; logout ends it." }),
    expiresAt: t.expose("expiresAt", { type: "DateTime" }),
    user: t.prismaField({
      type: "User",
      resolve: (query, payload, _args, ctx) =>
        ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: payload.user.id } }),
    }),
  }),
});

// Argon2 work grows with the input, so a bound on the password stops oversized-input abuse.
const PASSWORD_MIN = 12;
const PASSWORD_MAX = 256;

export const username = z
  .string()
  .trim()
  .min(3, "Username must be at least 3 characters")
  .max(32, "Username must be at most 32 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "Username may use letters, digits, '.', '_' and '-'");
export const email = z
  .string()
  .trim()
  .toLowerCase()
  .max(254, "Email must be at most 254 characters")
  .pipe(z.email("Email is not a valid address"));
export const newPassword = z
  .string()
  .min(PASSWORD_MIN, `Password must be at least ${PASSWORD_MIN} characters`)
  .max(PASSWORD_MAX, `Password must be at most ${PASSWORD_MAX} characters`);

const SignUpInput = builder.inputType("SignUpInput", {
  fields: (t) => ({
    username: t.string().validate(username),
    email: t.string({ description: "Trimmed and lower-cased before use." }).validate(email),
    password: t.string({ description: `${PASSWORD_MIN} to ${PASSWORD_MAX} characters.` }).validate(newPassword),
  }),
});

const LoginInput = builder.inputType("LoginInput", {
  fields: (t) => ({
    login: t
      .string({ description: "Username or email." })
      .validate(z.string().trim().min(1, "Login is required").max(254, "Login is too long")),
    password: t.string().validate(z.string().min(1, "Password is required").max(PASSWORD_MAX, "Password is too long")),
  }),
});

const userAgent = (ctx: Context) => ctx.request?.headers.get("user-agent") ?? null;

builder.queryFields((t) => ({
  viewer: t.prismaField({
    type: "User",
    nullable: true,
    description: "The signed-in user, or null when signed out.",
    resolve: (query, _root, _args, ctx) => {
      if (!ctx.viewer) return null;
      // What the session already says (id, username, role, partner) needs no database statement.
      if (selectsOnly(query, VIEWER_COLUMNS)) {
        const { id, username, role, partnerId } = ctx.viewer;
        return { id, username, role, partnerId } as UserRow;
      }
      return ctx.prisma.user.findUnique({ ...query, where: { id: ctx.viewer.id } });
    },
  }),
}));

const VIEWER_COLUMNS = new Set(["id", "username", "role", "partnerId"]);


builder.mutationFields((t) => ({
  signUp: t.field({
    type: AuthPayload,
    description:
      "Creates a developer account with no partner and signs it in. At most 20 sign-ups per client address per hour (RATE_LIMITED beyond). A taken username or email is a CONFLICT naming the field.",
    args: { input: t.arg({ type: SignUpInput }) },
    resolve: async (_root, { input }, ctx) => {
      // Before anything is looked up or hashed: each sign-up may answer whether a name is taken.
      const retryAfterSeconds = await ctx.services.loginThrottle.signUpAttempt(ctx.clientAddress);
      if (retryAfterSeconds > 0) throw rateLimited("Too many sign-ups", retryAfterSeconds);
      const taken = await ctx.prisma.user.findFirst({
        where: { OR: [{ usernameLower: input.username.toLowerCase() }, { email: input.email }] },
        select: { email: true },
      });
      if (taken) throw takenError(taken.email === input.email ? "email" : "username");
      const password = await hashPassword(input.password);
      try {
        const user = await ctx.prisma.user.create({
          data: { username: input.username, email: input.email, password, role: "developer" },
          select: { id: true },
        });
        ctx.authenticatedNow.add(user.id);
        return { ...(await ctx.services.sessions.start(user.id, userAgent(ctx))), user };
      } catch (error) {
        // A concurrent sign-up won the race for the same name.
        if (isUniqueViolation(error)) throw takenError(violatedIndex(error).includes("email") ? "email" : "username");
        throw error;
      }
    },
  }),

  login: t.field({
    type: AuthPayload,
    description:
      "Signs in with a username (any case) or email and a password. After 10 failures for one account from one address, whichever spelling of it was used (or 100 from one address), within 15 minutes, attempts are refused with RATE_LIMITED for up to 15 minutes. A success does not count, nor forget earlier failures.",
    args: { input: t.arg({ type: LoginInput }) },
    resolve: async (_root, { input }, ctx) => {
      // A login names at most one account: an email, or a username compared by its stored
      // lower-cased form (a unique column), never by a pattern.
      const login = input.login.toLowerCase();
      const user = await ctx.prisma.user.findUnique({
        where: login.includes("@") ? { email: login } : { usernameLower: login },
        select: { id: true, password: true },
      });
      // Every spelling of an account (username in any case, email) draws on one budget.
      const attempt = await ctx.services.loginThrottle.loginAttempt(
        user ? `user:${user.id}` : `login:${login}`,
        ctx.clientAddress,
      );
      if (!attempt.allowed) throw rateLimited("Too many failed sign-ins", attempt.retryAfterSeconds);
      // An invited user who has not accepted has no password and cannot sign in yet.
      const valid = user?.password
        ? await verifyPassword(user.password, input.password)
        : await verifyAgainstDecoy(input.password);
      // One answer for an unknown login and a wrong password, so neither reveals which accounts exist.
      if (!user?.password || !valid) throw unauthenticated("Invalid login or password");
      await attempt.succeeded();
      ctx.authenticatedNow.add(user.id);
      return { ...(await ctx.services.sessions.start(user.id, userAgent(ctx))), user };
    },
  }),

  logout: t.withAuth({ signedIn: true }).boolean({
    description: "Ends the current session: its token is refused from now on and its WebSockets close.",
    resolve: async (_root, _args, ctx) => {
      await ctx.services.sessions.end(ctx.viewer.sessionId);
      return true;
    },
  }),
}));

function takenError(field: "username" | "email") {
  return conflict(`That ${field} is already registered`, { field });
}

/** The unique index a P2002 names (through the driver adapter's error), or "" when it names none. */
function violatedIndex(error: unknown): string {
  const meta = (error as { meta?: { driverAdapterError?: { cause?: { constraint?: { index?: unknown } } } } }).meta;
  const index = meta?.driverAdapterError?.cause?.constraint?.index;
  return typeof index === "string" ? index : "";
}

const rateLimited = (message: string, retryAfterSeconds: number) =>
  clientError("RATE_LIMITED", `${message}; try again in ${retryAfterSeconds} seconds`, { retryAfterSeconds });

const REPLACEMENT_CONTACT =
  "When the user is their partner's primary contact and stops being its partnerAdmin: another partnerAdmin of the same partner, who becomes the contact. Without it, such a change is a CONFLICT.";

builder.mutationFields((t) => ({
  setUserRole: t.withAuth({ admin: true }).prismaField({
    type: "User",
    description:
      "Admin only. Staff roles need a user without a partner, partnerAdmin one with a partner (BAD_USER_INPUT otherwise); demoting the last admin is a CONFLICT, and so is demoting a partner's primary contact without a replacementContactId.",
    args: {
      userId: t.arg.globalID({ for: User }),
      role: t.arg({ type: Role }),
      replacementContactId: t.arg.globalID({ for: User, required: false, description: REPLACEMENT_CONTACT }),
    },
    resolve: async (query, _root, { userId, role, replacementContactId }, ctx) => {
      await ctx.services.userRights.setRole(userId.id, role, ctx.viewer.id, replacementContactId?.id);
      return ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: userId.id } });
    },
  }),

  setUserPartner: t.withAuth({ admin: true }).prismaField({
    type: "User",
    description:
      "Admin only. Moves a user into a partner, or out of any (partnerId null). Staff cannot join a partner and a partnerAdmin cannot leave one (BAD_USER_INPUT); a partner's primary contact leaves it only with a replacementContactId (CONFLICT otherwise).",
    args: {
      userId: t.arg.globalID({ for: User }),
      partnerId: t.arg.globalID({ for: PartnerOrganization, required: false }),
      replacementContactId: t.arg.globalID({ for: User, required: false, description: REPLACEMENT_CONTACT }),
    },
    resolve: async (query, _root, args, ctx) => {
      await ctx.services.userRights.setPartner(args.userId.id, args.partnerId?.id ?? null, ctx.viewer.id, args.replacementContactId?.id);
      return ctx.prisma.user.findUniqueOrThrow({ ...query, where: { id: args.userId.id } });
    },
  }),
}));
