import { z } from "zod";
import { hashPassword, verifyAgainstDecoy, verifyPassword } from "../auth/password.js";
import { endSession, startSession } from "../auth/sessions.js";
import type { Context } from "../context.js";
import { builder } from "./builder.js";
import { conflict, isUniqueViolation, unauthenticated } from "./errors.js";

export const Role = builder.enumType("Role", {
  values: {
    admin: { description: "Company staff with every permission." },
    support: { description: "Company staff who read everything and write developer docs." },
    partnerAdmin: { description: "Manages one partner organisation's keys and details." },
    developer: { description: "Reads one partner organisation's keys, usage and docs." },
  } as const,
});

export const User = builder.prismaNode("User", {
  id: { field: "id" },
  description: "A person who signs in: company staff, or a member of one partner organisation.",
  fields: (t) => ({
    username: t.exposeString("username"),
    email: t.exposeString("email", {
      nullable: true,
      description: "Readable by the user, the company's staff, and members of the same partner; null otherwise.",
      authScopes: (user) => ({ self: user.id, staff: true, partnerMember: user.partnerId ?? "" }),
      unauthorizedResolver: () => null,
    }),
    role: t.expose("role", { type: Role }),
    partner: t.relation("partner", { nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
  }),
});

interface AuthPayloadShape {
  token: string;
  expiresAt: Date;
  user: { id: string };
}

const AuthPayload = builder.objectRef<AuthPayloadShape>("AuthPayload").implement({
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

const username = z
  .string()
  .trim()
  .min(3, "Username must be at least 3 characters")
  .max(32, "Username must be at most 32 characters")
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, "Username may use letters, digits, '.', '_' and '-'");
const email = z
  .string()
  .trim()
  .toLowerCase()
  .max(254, "Email must be at most 254 characters")
  .pipe(z.email("Email is not a valid address"));
const newPassword = z
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
    resolve: (query, _root, _args, ctx) =>
      ctx.viewer ? ctx.prisma.user.findUnique({ ...query, where: { id: ctx.viewer.id } }) : null,
  }),
}));

builder.mutationFields((t) => ({
  signUp: t.field({
    type: AuthPayload,
    description: "Creates a developer account with no partner and signs it in.",
    args: { input: t.arg({ type: SignUpInput }) },
    resolve: async (_root, { input }, ctx) => {
      const taken = await ctx.prisma.user.findFirst({
        where: {
          OR: [{ username: { equals: input.username, mode: "insensitive" } }, { email: input.email }],
        },
        select: { username: true, email: true },
      });
      if (taken) throw takenError(taken.email === input.email ? "email" : "username");
      const password = await hashPassword(input.password);
      try {
        const user = await ctx.prisma.user.create({
          data: { username: input.username, email: input.email, password, role: "developer" },
          select: { id: true },
        });
        ctx.authenticatedNow.add(user.id);
        return { ...(await startSession(ctx.services, user.id, userAgent(ctx))), user };
      } catch (error) {
        if (isUniqueViolation(error)) throw takenError("username or email");
        throw error;
      }
    },
  }),

  login: t.field({
    type: AuthPayload,
    description: "Signs in with a username or email and a password.",
    args: { input: t.arg({ type: LoginInput }) },
    resolve: async (_root, { input }, ctx) => {
      const user = await ctx.prisma.user.findFirst({
        where: input.login.includes("@")
          ? { email: input.login.toLowerCase() }
          : { username: { equals: input.login, mode: "insensitive" } },
        select: { id: true, password: true },
      });
      const valid = user
        ? await verifyPassword(user.password, input.password)
        : await verifyAgainstDecoy(input.password);
      // One answer for an unknown login and a wrong password, so neither reveals which accounts exist.
      if (!user || !valid) throw unauthenticated("Invalid login or password");
      ctx.authenticatedNow.add(user.id);
      return { ...(await startSession(ctx.services, user.id, userAgent(ctx))), user };
    },
  }),

  logout: t.withAuth({ signedIn: true }).boolean({
    description: "Ends the current session: its token is refused from now on and its WebSockets close.",
    resolve: async (_root, _args, ctx) => {
      await endSession(ctx.services, ctx.viewer.sessionId);
      return true;
    },
  }),
}));

function takenError(field: string) {
  return conflict(`That ${field} is already registered`, { field });
}
