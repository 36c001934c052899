/** A count with thousands separators, as the cards' sentences show it ("9,898 ok"). */
export const formatCount = (n: number): string => n.toLocaleString('en-US');
