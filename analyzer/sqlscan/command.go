package sqlscan

// Command is the kind of the first statement in a query string, from its
// first keyword.
type Command uint8

const (
	CommandEmpty      Command = iota // no statement at all
	CommandSelect                    // SELECT, VALUES, TABLE (and WITH ... SELECT)
	CommandInsert                    // INSERT (and WITH ... INSERT)
	CommandUpdate                    // UPDATE (and WITH ... UPDATE)
	CommandDelete                    // DELETE (and WITH ... DELETE)
	CommandMerge                     // MERGE (and WITH ... MERGE)
	CommandWith                      // WITH whose main statement could not be found
	CommandBegin                     // BEGIN, START TRANSACTION
	CommandCommit                    // COMMIT, END (also COMMIT PREPARED)
	CommandRollback                  // ROLLBACK, ABORT (also ROLLBACK TO SAVEPOINT)
	CommandSavepoint                 // SAVEPOINT
	CommandRelease                   // RELEASE [SAVEPOINT]
	CommandSet                       // SET
	CommandReset                     // RESET
	CommandShow                      // SHOW
	CommandCopy                      // COPY
	CommandExplain                   // EXPLAIN
	CommandPrepare                   // PREPARE
	CommandExecute                   // EXECUTE
	CommandDeallocate                // DEALLOCATE
	CommandDiscard                   // DISCARD
	CommandListen                    // LISTEN
	CommandUnlisten                  // UNLISTEN
	CommandNotify                    // NOTIFY
	CommandLock                      // LOCK
	CommandVacuum                    // VACUUM, ANALYZE
	CommandCall                      // CALL
	CommandDo                        // DO
	CommandDeclare                   // DECLARE (cursor)
	CommandFetch                     // FETCH
	CommandClose                     // CLOSE
	CommandDDL                       // CREATE, ALTER, DROP, TRUNCATE, GRANT, REVOKE, COMMENT
	CommandOther                     // anything else
)

var commandNames = [...]string{"Empty", "Select", "Insert", "Update", "Delete",
	"Merge", "With", "Begin", "Commit", "Rollback", "Savepoint", "Release", "Set",
	"Reset", "Show", "Copy", "Explain", "Prepare", "Execute", "Deallocate",
	"Discard", "Listen", "Unlisten", "Notify", "Lock", "Vacuum", "Call", "Do",
	"Declare", "Fetch", "Close", "DDL", "Other"}

func (c Command) String() string {
	if int(c) < len(commandNames) {
		return commandNames[c]
	}
	return "Command(?)"
}

var kwCommand = [kwCount]Command{
	kwSelect: CommandSelect, kwValues: CommandSelect, kwTable: CommandSelect,
	kwInsert: CommandInsert, kwUpdate: CommandUpdate, kwDelete: CommandDelete,
	kwMerge: CommandMerge, kwWith: CommandWith, kwBegin: CommandBegin,
	kwStart: CommandBegin, kwCommit: CommandCommit, kwEnd: CommandCommit,
	kwRollback: CommandRollback, kwAbort: CommandRollback,
	kwSavepoint: CommandSavepoint, kwRelease: CommandRelease, kwSet: CommandSet,
	kwReset: CommandReset, kwShow: CommandShow, kwCopy: CommandCopy,
	kwExplain: CommandExplain, kwPrepare: CommandPrepare,
	kwExecute: CommandExecute, kwDeallocate: CommandDeallocate,
	kwDiscard: CommandDiscard, kwListen: CommandListen,
	kwUnlisten: CommandUnlisten, kwNotify: CommandNotify, kwLock: CommandLock,
	kwVacuum: CommandVacuum, kwAnalyze: CommandVacuum, kwCall: CommandCall,
	kwDo: CommandDo, kwDeclare: CommandDeclare, kwFetch: CommandFetch,
	kwClose: CommandClose, kwCreate: CommandDDL, kwAlter: CommandDDL,
	kwDrop: CommandDDL, kwTruncate: CommandDDL, kwGrant: CommandDDL,
	kwRevoke: CommandDDL, kwComment: CommandDDL,
}

// commandOf maps the first keyword of a statement to its Command.
func commandOf(k kw) Command {
	if c := kwCommand[k]; c != CommandEmpty {
		return c
	}
	return CommandOther
}

// command works out the first statement's Command.
func (n *normalizer) command(tok Token, k kw) {
	if n.cmdState == 0 {
		switch {
		case tok.Kind == Ident:
			n.cmd = commandOf(k)
			n.cmdState = 2
			if k == kwWith {
				n.with = true
				n.withDepth = n.sp.depth
				n.cmdState = 1
			}
		case tok.Kind == Punct && n.src[tok.Start] == '(':
			// (SELECT ...): keep looking
		default:
			n.cmd = CommandOther
			n.cmdState = 2
		}
		return
	}
	// Inside WITH: the main statement is the first verb at WITH's level.
	if tok.Kind == Ident && n.sp.depth == n.withDepth {
		switch k {
		case kwSelect, kwValues, kwTable, kwInsert, kwUpdate, kwDelete, kwMerge:
			n.cmd = commandOf(k)
			n.cmdState = 2
		}
	}
}
