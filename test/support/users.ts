import { hashPassword } from "../../src/auth/password.js";
import type { Role } from "../../src/generated/prisma/enums.js";
import type { TestServer } from "./server.js";

export const TEST_PASSWORD = "correct horse battery staple";

export interface SignedInUser {
  id: string;
  /** The Relay global id the API shows. */
  globalId: string;
  username: string;
  token: string;
}

/** Inserts a user with the given role and partner directly, then signs in through the API. */
export async function createUser(
  server: TestServer,
  username: string,
  role: Role = "developer",
  partnerId: string | null = null,
): Promise<SignedInUser> {
  const user = await server.app.services.prisma.user.create({
    data: { username, email: `${username}@example.test`, password: await hashPassword(TEST_PASSWORD), role, partnerId },
  });
  const login = await server.gql<{ login: { token: string; user: { id: string } } }>(
    `mutation ($input: LoginInput!) { login(input: $input) { token user { id } } }`,
    { input: { login: username, password: TEST_PASSWORD } },
  );
  if (!login.data?.login) throw new Error(`login failed: ${JSON.stringify(login.errors)}`);
  return { id: user.id, globalId: login.data.login.user.id, username, token: login.data.login.token };
}
