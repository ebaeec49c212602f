import type { MatrixRow } from "../support/matrix.js";
import { ACTORS } from "../support/matrix.js";
import { TEST_PASSWORD } from "../support/users.js";

const signedIn = ACTORS.filter((actor) => actor !== "signedOut");

const rows: MatrixRow[] = [
  {
    field: "Query.viewer",
    case: "the signed-in user",
    allow: signedIn,
    operation: () => ({ query: `{ viewer { id username } }` }),
  },
  {
    field: "Mutation.signUp",
    case: "anyone may create a developer account",
    allow: ACTORS,
    operation: (_world, actor) => ({
      query: `mutation ($input: SignUpInput!) { signUp(input: $input) { token user { role } } }`,
      variables: { input: { username: `new-${actor}`, email: `new-${actor}@example.test`, password: TEST_PASSWORD } },
    }),
    allowed: (response) => (response.data as { signUp?: { user: { role: string } } })?.signUp?.user.role === "developer",
  },
  {
    field: "Mutation.login",
    case: "anyone with the password",
    allow: ACTORS,
    operation: () => ({
      query: `mutation ($input: LoginInput!) { login(input: $input) { token } }`,
      variables: { input: { login: "m-developera", password: TEST_PASSWORD } },
    }),
  },
];

export default rows;

rows.push({
  field: "Mutation.logout",
  case: "ends the caller's own session",
  allow: signedIn,
  operation: async (world, actor) => {
    if (actor === "signedOut") return { query: `mutation { logout }` };
    const login = await world.server.gql<{ login: { token: string } }>(
      `mutation ($input: LoginInput!) { login(input: $input) { token } }`,
      { input: { login: world.users[actor].username, password: TEST_PASSWORD } },
    );
    return { query: `mutation { logout }`, token: login.data!.login.token };
  },
});
