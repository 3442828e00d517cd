// Every panel of the picture, one import each: a panel module registers itself when imported.
// Keep one line per panel so that panels are added and removed independently.
