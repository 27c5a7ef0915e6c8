package server

// SetTestEngine makes every Server whose Engine is EngineAuto use e
// instead (EngineGoroutine), or choose as usual (EngineAuto): the tests
// run once for each driver.
func SetTestEngine(e Engine) { testEngine = e }

// EngineUnderTest is the engine SetTestEngine set.
func EngineUnderTest() Engine { return testEngine }
