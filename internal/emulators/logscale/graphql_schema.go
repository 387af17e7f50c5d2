package logscale

import (
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// schemaSDL is the subset of LogScale's GraphQL schema that siemship's setup
// uses. Names and types are LogScale's (from its published schema), so a
// document that validates here uses the same argument and variable types
// the real service checks (e.g. RepoOrViewName! where it is expected).
const schemaSDL = `
scalar YAML
scalar RepoOrViewName
scalar JSON

schema { query: Query mutation: Mutation }

type Query {
  repository(name: String!): Repository!
  searchDomain(name: String!): SearchDomain!
}

interface SearchDomain {
  id: String!
  name: RepoOrViewName!
  dashboards: [Dashboard!]!
}

type Repository implements SearchDomain {
  id: String!
  name: RepoOrViewName!
  dashboards: [Dashboard!]!
  parsers: [Parser!]!
  parser(id: String, name: String): Parser
  ingestTokens: [IngestToken!]!
}

type Dashboard {
  id: String!
  name: String!
  yamlTemplate: YAML!
}

type Parser {
  id: String!
  name: String!
  displayName: String!
  isBuiltIn: Boolean!
  script: String!
  fieldsToTag: [String!]!
  fieldsToBeRemovedBeforeParsing: [String!]!
  testCases: [ParserTestCase!]!
  yamlTemplate: YAML!
}

type ParserTestCase {
  event: ParserTestEvent!
  outputAssertions: [ParserTestCaseAssertionsForOutput!]!
}

type ParserTestEvent { rawString: String! }

type ParserTestCaseAssertionsForOutput {
  outputEventIndex: Int!
  assertions: ParserTestCaseOutputAssertions!
}

type ParserTestCaseOutputAssertions {
  fieldsNotPresent: [String!]!
  fieldsHaveValues: [FieldHasValue!]!
}

type FieldHasValue { fieldName: String! expectedValue: String! }

type IngestToken {
  name: String!
  token: String!
  parser: Parser
}

type BooleanResultType { result: Boolean! }

type DeleteDashboardMutation { dashboard: Dashboard! }

type UnassignIngestTokenMutation { result: Boolean! }

union ParserTestRunOutput = ParserTestRunCompleted | ParserTestRunAborted

type ParserTestRunCompleted { results: [ParserTestCaseResult!]! }

type ParserTestRunAborted { errorMessage: String! }

type ParserTestCaseResult {
  outputEvents: [OutputEvent!]!
  outputFailures: [ParserTestCaseFailuresForOutput!]!
}

type OutputEvent { fields: [EventField!]! }

type EventField { fieldName: String! value: String! }

type ParserTestCaseFailuresForOutput {
  outputEventIndex: Int!
  failures: ParserTestCaseOutputFailures!
}

type ParserTestCaseOutputFailures { parsingErrors: [String!]! }

type Mutation {
  createParserFromTemplate(input: CreateParserFromTemplateInput!): Parser!
  createParserV2(input: CreateParserInputV2!): Parser!
  deleteParser(input: DeleteParserInput!): BooleanResultType!
  testParserV2(input: ParserTestRunInput!): ParserTestRunOutput!
  createDashboardFromTemplateV2(input: CreateDashboardFromTemplateV2Input!): Dashboard!
  deleteDashboard(input: DeleteDashboardInput!): DeleteDashboardMutation!
  addIngestTokenV3(input: AddIngestTokenV3Input!): IngestToken!
  assignParserToIngestTokenV2(input: AssignParserToIngestTokenInputV2!): IngestToken!
  unassignIngestToken(repositoryName: String!, tokenName: String!): UnassignIngestTokenMutation!
  removeIngestToken(repositoryName: String!, name: String!): BooleanResultType!
}

input CreateParserFromTemplateInput { viewName: RepoOrViewName! name: String yamlTemplate: YAML! }

input CreateParserInputV2 {
  name: String!
  script: String!
  testCases: [ParserTestCaseInput!]!
  repositoryName: RepoOrViewName!
  fieldsToTag: [String!]!
  fieldsToBeRemovedBeforeParsing: [String!]!
  allowOverwritingExistingParser: Boolean
  languageVersion: LanguageVersionInputType
}

# Unverified shape: siemship never sends it.
input LanguageVersionInputType { name: String! }

input ParserTestCaseInput {
  event: ParserTestEventInput!
  outputAssertions: [ParserTestCaseAssertionsForOutputInput!]
}

input ParserTestEventInput { rawString: String! }

input ParserTestCaseAssertionsForOutputInput {
  outputEventIndex: Int!
  assertions: ParserTestCaseOutputAssertionsInput!
}

input ParserTestCaseOutputAssertionsInput {
  fieldsNotPresent: [String!]
  fieldsHaveValues: [FieldHasValueInput!]
}

input FieldHasValueInput { fieldName: String! expectedValue: String! }

input DeleteParserInput { id: String! repositoryName: RepoOrViewName! }

input ParserTestRunInput {
  repositoryName: RepoOrViewName!
  parserName: String!
  script: String!
  fieldsToTag: [String!]!
  fieldsToBeRemovedBeforeParsing: [String!]!
  testCases: [ParserTestCaseInput!]!
  languageVersion: LanguageVersionInputType
  schema: YAML
}

input CreateDashboardFromTemplateV2Input { viewName: RepoOrViewName! name: String yamlTemplate: YAML! }

input DeleteDashboardInput { id: String! }

input AddIngestTokenV3Input { repositoryName: String! name: String! parser: String customToken: String }

input AssignParserToIngestTokenInputV2 { repositoryName: String! tokenName: String! parser: String! }
`

// loadSchema parses schemaSDL; it is a constant, so failure is a bug.
func loadSchema() *ast.Schema {
	return gqlparser.MustLoadSchema(&ast.Source{Name: "logscale.graphql", Input: schemaSDL})
}
